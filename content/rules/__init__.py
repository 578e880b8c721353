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
    "X_CONFIG",
    "X_CONFIG_V1",
    "X_CONFIG_V2",
    "X_CONFIG_V3",
    "X_LIMIT",
    "X_URL_LENGTH",
    "LengthCheck",
    "XConfig",
    "bluesky_accepts",
    "bluesky_length",
    "bluesky_post_length",
    "check_all",
    "check_length",
    "find_urls",
    "mastodon_accepts",
    "mastodon_is_blank",
    "mastodon_length",
    "mastodon_post_length",
    "x_accepts",
    "x_is_valid",
    "x_post_length",
    "x_weighted_length",
]

X_LIMIT = X_CONFIG.max_weighted_length  # 280
BLUESKY_LIMIT = 300
BLUESKY_MAX_BYTES = 3000

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


# One signature per platform, for the platform registry (``content/platforms.py``),
# which names these and checks a post with them (``check_length``): the length of a
# post with its content warning, and whether the platform takes it beyond its length.


def x_post_length(text: str, content_warning: str = "") -> int:
    """X has no content warning: the weighted length of the text alone."""
    return x_weighted_length(text)


def x_accepts(text: str) -> bool:
    """X refuses U+FFFE, U+FEFF and U+FFFF whatever the length."""
    return not has_invalid_characters(text)


def mastodon_post_length(text: str, content_warning: str = "") -> int:
    """Mastodon counts the content warning together with the text."""
    return mastodon_length(text, spoiler_text=content_warning)


def mastodon_accepts(text: str) -> bool:
    """Mastodon refuses a blank text (white space only)."""
    return not mastodon_is_blank(text)


def bluesky_post_length(text: str, content_warning: str = "") -> int:
    """A Bluesky content warning is a label, not text: the text alone counts."""
    return bluesky_length(text)


def bluesky_accepts(text: str) -> bool:
    """Bluesky also caps the UTF-8 size of the text."""
    return len(text.encode("utf-8", "surrogatepass")) <= BLUESKY_MAX_BYTES


def check_length(platform: str, text: str, *, limit: int | None = None,
                 spoiler_text: str = "") -> LengthCheck:
    """Check ``text`` against ``platform``'s rule; ``limit`` overrides its default.

    Which rule a platform uses is the platform registry's (``content.platforms``); it
    names the counters above, so it is imported here when called, not at import."""
    from content.platforms import check_length as registry_check
    return registry_check(platform, text, limit=limit, spoiler_text=spoiler_text)


def check_all(text: str) -> dict[str, LengthCheck]:
    """``text`` against the default limit of every real platform (not the dry run)."""
    from content.platforms import check_all as registry_check_all
    return registry_check_all(text)
