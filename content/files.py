"""Reading the files of a campaign folder within bounds: size, encoding, nesting.

A file too large is refused before it is read (a 20 MB template took a minute to be
refused when it was rendered first); text must be UTF-8 (a byte-order mark at the
start is an encoding marker and is dropped); TOML nested deeper than a campaign needs
is refused before `tomllib`, which recurses once per level, parses it.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

from content.limits import MAX_TOML_NESTING


class FileProblem(ValueError):
    """A file that cannot be read as campaign input; `line` where it is known."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.line = line


def read_text(path: Path, *, limit: int) -> str:
    """The file's text, if it is at most `limit` bytes of UTF-8."""
    try:
        with path.open("rb") as fh:
            data = fh.read(limit + 1)
    except OSError as e:
        raise FileProblem(f"cannot be read ({e.strerror or type(e).__name__})") from None
    if len(data) > limit:
        raise FileProblem(f"larger than {limit:,} bytes; a campaign file or template is "
                          "a few kilobytes")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise FileProblem(f"not UTF-8 text (byte 0x{data[e.start]:02x} at position {e.start}); "
                          "save it as UTF-8", line=line) from None


def toml_nesting(text: str) -> tuple[int, int]:
    """(deepest nesting of [ and {, the line where it is reached) outside strings and
    comments. Conservative: text that is not valid TOML gets some answer, and tomllib
    reports its real error afterwards."""
    depth = deepest = 0
    line = deepest_line = 1
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch == "\n":
            line += 1
        elif ch == "#":
            end = text.find("\n", i)
            i = n if end < 0 else end
            continue
        elif ch in "\"'":
            quote = text[i:i + 3] if text[i:i + 3] in ('"""', "'''") else ch
            end = _string_end(text, i + len(quote), quote)
            line += text.count("\n", i, end)
            i = end
            continue
        elif ch in "[{":
            depth += 1
            if depth > deepest:
                deepest, deepest_line = depth, line
        elif ch in "]}":
            depth = max(0, depth - 1)
        i += 1
    return deepest, deepest_line


def _string_end(text: str, start: int, quote: str) -> int:
    """Index just past the closing `quote` (basic strings have backslash escapes)."""
    i = start
    while True:
        j = text.find(quote, i)
        if j < 0:
            return len(text)
        if quote[0] == '"':
            backslashes = len(text[i:j]) - len(text[i:j].rstrip("\\"))
            if backslashes % 2:
                i = j + 1
                continue
        if len(quote) == 1 and "\n" in text[start:j]:
            return text.index("\n", start)  # an unclosed one-line string: tomllib says so
        return j + len(quote)


def load_toml(text: str) -> dict[str, Any]:
    """Parse campaign TOML; a `FileProblem` with the line for anything wrong."""
    deepest, line = toml_nesting(text)
    if deepest > MAX_TOML_NESTING:
        raise FileProblem(f"arrays or tables nested {deepest} deep; a campaign needs at "
                          f"most {MAX_TOML_NESTING}", line=line)
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        m = re.search(r"line (\d+)", str(e))
        msg = re.sub(r"\s*\(at line \d+, column \d+\)", "", str(e))
        raise FileProblem(f"not valid TOML: {msg}", line=int(m.group(1)) if m else None) from None
    except RecursionError:   # the pre-scan above should make this unreachable
        raise FileProblem(f"nested too deeply; a campaign needs at most {MAX_TOML_NESTING} "
                          "levels") from None
