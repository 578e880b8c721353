"""The data twitter-text 3.1.0 counts with, as committed JSON beside this module.

``data/twitter-text.json`` holds twitter-text's TLD lists and ``data/twemoji-parser.json``
every emoji sequence twemoji-parser 11.0.2 (the emoji matcher twitter-text 3.1.0 uses)
recognises.  Both are generated from the installed npm packages by
``python -m tests.reference.regen``, and a test checks they still equal them; their
sources and licences are in ``data/README.md``.
"""

from __future__ import annotations

import json
from importlib import resources

__all__ = ["CCTLDS", "EMOJI", "EMOJI_UNLESS_FE0E", "GTLDS"]


def _load(name: str) -> dict[str, list[str]]:
    text = resources.files(__package__).joinpath("data", name).read_text(encoding="utf-8")
    data: dict[str, list[str]] = json.loads(text)
    return data


_TWITTER_TEXT = _load("twitter-text.json")
_TWEMOJI = _load("twemoji-parser.json")

# In twitter-text's order, which is its matching order (longest of a prefix pair first).
GTLDS: tuple[str, ...] = tuple(_TWITTER_TEXT["gtld"])
CCTLDS: tuple[str, ...] = tuple(_TWITTER_TEXT["cctld"])
# Emoji sequences (code point strings); the second set only counts as an emoji where
# the next character is not U+FE0E, the text presentation selector.
EMOJI: frozenset[str] = frozenset(_TWEMOJI["emoji"])
EMOJI_UNLESS_FE0E: frozenset[str] = frozenset(_TWEMOJI["emoji_unless_followed_by_fe0e"])
