"""Length rules of X, Mastodon and Bluesky: how long a post is, and whether it fits.

Pure functions, no I/O.  Each platform's rule is its own module, written to give the
figure the platform itself gives:

- ``x``: X's weighted length, exactly twitter-text 3.1.0's ``parseTweet`` (URLs 23,
  emoji 2, CJK and most symbols 2, the rest 1), over the data in ``x_data``;
- ``mastodon``: Mastodon's own validator (grapheme clusters of content warning and
  stripped text, each linked URL 23, ``@user@domain`` as ``@user``, blank refused);
- ``graphemes``: grapheme clusters as ICU counts them, which is Bluesky's length
  (``@atproto/api``'s ``RichText.graphemeLength``); Bluesky also caps UTF-8 bytes.

tests/test_lengths_reference.py compares X and Bluesky with the reference npm
packages over a generated corpus; tests/test_rules.py holds the examples and each
Mastodon rule with its source.
"""

from __future__ import annotations

from dataclasses import dataclass

from content.rules.graphemes import grapheme_count
from content.rules.mastodon import (
    MASTODON_DEFAULT_LIMIT,
    MASTODON_URL_LENGTH,
    mastodon_is_blank,
    mastodon_length,
)
from content.rules.x import (
    X_CONFIG,
    X_CONFIG_V1,
    X_CONFIG_V2,
    X_CONFIG_V3,
    X_URL_LENGTH,
    XConfig,
    find_urls,
    has_invalid_characters,
    x_is_valid,
    x_weighted_length,
)

__all__ = [
    "BLUESKY_LIMIT",
    "BLUESKY_MAX_BYTES",
    "MASTODON_DEFAULT_LIMIT",
    "MASTODON_URL_LENGTH",
    "PLATFORMS",
    "X_CONFIG",
    "X_CONFIG_V1",
    "X_CONFIG_V2",
    "X_CONFIG_V3",
    "X_LIMIT",
    "X_URL_LENGTH",
    "LengthCheck",
    "XConfig",
    "bluesky_length",
    "check_all",
    "check_length",
    "find_urls",
    "mastodon_is_blank",
    "mastodon_length",
    "x_is_valid",
    "x_weighted_length",
]

X_LIMIT = X_CONFIG.max_weighted_length  # 280
BLUESKY_LIMIT = 300
BLUESKY_MAX_BYTES = 3000

PLATFORMS = ("x", "mastodon", "bluesky", "dryrun")


def bluesky_length(text: str) -> int:
    """Bluesky's length of a post: grapheme clusters (the UTF-8 cap is separate)."""
    return grapheme_count(text)


@dataclass(frozen=True)
class LengthCheck:
    """The length of a text on one platform against that platform's limit."""

    platform: str  # "x" | "mastodon" | "bluesky" | "dryrun"
    length: int
    limit: int
    ok: bool
    unit: str  # "weighted chars", "chars" or "graphemes"

    def as_dict(self) -> dict[str, object]:
        return {"length": self.length, "limit": self.limit, "ok": self.ok}


def check_length(
    platform: str, text: str, *, limit: int | None = None, spoiler_text: str = ""
) -> LengthCheck:
    """Check ``text`` against ``platform``'s rules; ``limit`` overrides the default.

    ``ok`` needs 0 < length <= limit.  On X (and "dryrun", which applies X's rules as
    the strictest) the text must also be free of the characters X rejects; on Mastodon
    it must not be blank (white space only); on Bluesky it must also fit in 3000 UTF-8
    bytes.  ``spoiler_text`` (a content warning) only exists on Mastodon and is
    ignored elsewhere.
    """
    if platform not in PLATFORMS:
        raise ValueError(f"unknown platform {platform!r}; expected one of {PLATFORMS}")
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be positive, got {limit}")

    if platform in ("x", "dryrun"):
        length = x_weighted_length(text)
        limit = X_LIMIT if limit is None else limit
        ok = 0 < length <= limit and not has_invalid_characters(text)
        return LengthCheck(platform, length, limit, ok, "weighted chars")
    if platform == "mastodon":
        length = mastodon_length(text, spoiler_text=spoiler_text)
        limit = MASTODON_DEFAULT_LIMIT if limit is None else limit
        ok = 0 < length <= limit and not mastodon_is_blank(text)
        return LengthCheck(platform, length, limit, ok, "chars")
    length = bluesky_length(text)
    limit = BLUESKY_LIMIT if limit is None else limit
    ok = 0 < length <= limit and len(text.encode("utf-8", "surrogatepass")) <= BLUESKY_MAX_BYTES
    return LengthCheck(platform, length, limit, ok, "graphemes")


def check_all(text: str) -> dict[str, LengthCheck]:
    """Check ``text`` against the default limits of X, Mastodon and Bluesky."""
    return {name: check_length(name, text) for name in ("x", "mastodon", "bluesky")}
