"""Which characters a post, title, hashtag, name or var may hold.

The approver must see exactly what goes out. A terminal escape (`\\x1b[8m` hides text
in `preview`), a bidirectional override (U+202E shows "txt.exe" for "exe.txt") or an
invisible character (U+200B, U+FEFF) would let a post differ from what was read, or
two posts that look the same differ for the duplicate checks. So they are refused at
validation, with where they are; nothing is silently removed.

Refused:
- control characters (Unicode category Cc) except newline. A tab is refused too: each
  platform shows it differently (X collapses it, Mastodon keeps it) and a person who
  typed one meant spaces; the message says so;
- line and paragraph separators (U+2028, U+2029): invisible line breaks; use a newline;
- format characters (category Cf): bidi embeddings, overrides, isolates and marks,
  zero-width spaces, word joiners, soft hyphens, U+FEFF (a byte-order mark an editor
  left in the text), ...;
- lone surrogates (a non-UTF-8 byte smuggled through the command line).

Allowed, because real text needs them: ZWJ U+200D and ZWNJ U+200C between two visible
characters (emoji sequences like 👩‍💻, Persian and Indic scripts); emoji tag sequences
(the flags of England, Scotland, Wales: U+1F3F4 followed by tag characters); variation
selectors (category Mn, not Cf: ❤️).
"""

from __future__ import annotations

import re
import unicodedata

_ZWJ, _ZWNJ = "\u200d", "\u200c"
_BLACK_FLAG = "\U0001f3f4"
_TAGS = range(0xE0020, 0xE0080)     # tag characters; U+E007F cancels (ends) a tag run
_REFUSED = ("Cc", "Cf", "Cs", "Zl", "Zp")
_KEEP = ("\n", _ZWJ, _ZWNJ)

# What to say about the common ones, and what to do instead of "remove it".
_HINTS = {
    "\t": ("a tab", "write spaces instead"),
    "\r": ("a carriage return", "save the file with plain newlines"),
    "\ufeff": ("an invisible byte-order mark, which some editors add", "delete it"),
    "\x1b": ("a terminal escape, which can hide text from the approver", "remove it"),
    "\u2028": ("an invisible line break", "write a newline instead"),
    "\u2029": ("an invisible paragraph break", "write a newline instead"),
}


def _visible(ch: str) -> bool:
    return not ch.isspace() and unicodedata.category(ch)[0] not in "CZ"


# In ASCII only control characters are refused (it has no format characters).
_ASCII_REFUSED = re.compile("[\x00-\x09\x0b-\x1f\x7f]")


def forbidden_character(text: str) -> str | None:
    """The first refused character of `text`, said for a message ("holds U+202E
    RIGHT-TO-LEFT OVERRIDE (an invisible control or format character) at character
    12; remove it"), or None if it has none."""
    # Every character the walk below can refuse (joiners and tag characters are
    # format characters too) is of a refused category: a text holding none of those,
    # as nearly every post, is let through without the walk (planning checks 100,000).
    return _first_refused(text) if refused_in(text) else None


def refused_in(text: str) -> bool:
    """Whether `text` holds a character of a refused kind (category), newlines aside:
    without one it holds nothing `forbidden_character` refuses (with one it may still
    be allowed: a joiner between two visible characters, an emoji flag's tags)."""
    if text.isascii():
        return _ASCII_REFUSED.search(text) is not None
    return any(unicodedata.category(ch) in _REFUSED for ch in set(text) if ch != "\n")


def _first_refused(text: str) -> str | None:
    in_tag_run = False
    for i, ch in enumerate(text):
        code = ord(ch)
        if ch == "\n":
            in_tag_run = False
            continue
        if code in _TAGS:
            if not in_tag_run and not (i > 0 and text[i - 1] == _BLACK_FLAG):
                return _describe(text, i, "a tag character outside an emoji flag")
            in_tag_run = code != 0xE007F
            continue
        in_tag_run = False
        if ch in (_ZWJ, _ZWNJ):
            if 0 < i < len(text) - 1 and _visible(text[i - 1]) and _visible(text[i + 1]):
                continue
            return _describe(text, i, "an invisible joiner that joins nothing")
        if unicodedata.category(ch) in _REFUSED:
            return _describe(text, i)
    return None


def _describe(text: str, index: int, why: str | None = None) -> str:
    ch = text[index]
    what, todo = _HINTS.get(ch, (why, "remove it"))
    if what is None:
        what = ("a lone surrogate: text that was not UTF-8" if unicodedata.category(ch) == "Cs"
                else "an invisible control or format character")
    name = unicodedata.name(ch, "")
    label = f"U+{ord(ch):04X}" + (f" {name}" if name else "")
    line = text.count("\n", 0, index)
    column = index - (text.rfind("\n", 0, index) + 1) + 1
    where = f"line {line + 1}, character {column}" if line else f"character {column}"
    return f"holds {label} ({what}) at {where}; {todo}"


def visible(text: str) -> str:
    """`text` with each control or format character shown as its code (`\\x1b` becomes
    `<U+001B>`), for a terminal: text stored before these rules, or from elsewhere,
    cannot hide itself. Newlines, joiners and emoji tags stay as they are."""
    return "".join(f"<U+{ord(ch):04X}>" if ch not in _KEEP and ord(ch) not in _TAGS
                   and unicodedata.category(ch) in _REFUSED else ch for ch in text)
