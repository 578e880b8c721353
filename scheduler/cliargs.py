"""The command line's words, checked and normalised before typer parses them.

- An argument that is not UTF-8 (a file name in Latin-1, a stray byte) reaches Python
  as lone surrogates; printed, it would crash the terminal output. It is refused with
  its position, before anything runs.
- `--post 31 32` is how the README writes several posts; click takes one value per
  option, so the ids after a `--post` become `--post 31 --post 32`. Only whole
  numbers are taken this way, so `approve --post 31 petition` still reads `petition`
  as the campaign.
"""

from __future__ import annotations

from content.errors import TminusError

# The commands that take several --post ids.
_MULTI_POST = {"approve", "cancel"}


def normalize(args: list[str]) -> list[str]:
    """`args` as typer should see them, or a TminusError for an unusable one."""
    for n, arg in enumerate(args, start=1):
        bad = next((ch for ch in arg if "\udc80" <= ch <= "\udcff"), None)
        if bad is not None:
            shown = arg.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
            raise TminusError(f"argument {n} ({shown[:60]!r}) is not UTF-8 text (byte "
                              f"0x{ord(bad) - 0xDC00:02x}); tminus takes UTF-8 arguments")
        if any("\ud800" <= ch <= "\udfff" for ch in arg):
            raise TminusError(f"argument {n} holds a lone surrogate; tminus takes UTF-8 arguments")
    if not args or args[0] not in _MULTI_POST:
        return list(args)
    out: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":                   # what follows is not options
            return out + args[i:]
        out.append(arg)
        i += 1
        if arg == "--post" and i < len(args):    # its own value, as click reads it
            out.append(args[i])
            i += 1
        if arg == "--post" or arg.startswith("--post="):
            while i < len(args) and _is_id(args[i]):
                out += ["--post", args[i]]
                i += 1
    return out


def _is_id(arg: str) -> bool:
    return arg.isascii() and arg.isdigit()
