"""Share links: a suggested text as one click to each platform's composer.

- X's web intent takes the text, and adds itself the hashtags, the link and "via
  @account" it is given as separate parameters; what X counts is the text with all of
  them (`x_post`).
- Bluesky's and Mastodon's share pages take one text, so the hashtags and link are
  added to it here (`post_text`); Mastodon's link needs the supporter's own server,
  so only its query is built here and the page puts `https://SERVER/share?` before it.

Every value is percent-encoded with `quote` (spaces as %20, which every composer reads;
`+` would be read as a plus by some), so `urllib.parse.parse_qs` gives each text back.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote, urlencode

from content.rules import LengthCheck, check_length

X_INTENT = "https://x.com/intent/tweet"
BLUESKY_INTENT = "https://bsky.app/intent/compose"
MASTODON_SHARE = "https://{instance}/share"    # the page fills in the supporter's server


@dataclass(frozen=True)
class Extras:
    """What every share link adds to a suggested text."""

    hashtags: tuple[str, ...] = ()      # with their "#"
    url: str | None = None
    via: str | None = None              # X account, without "@"
    related: tuple[str, ...] = ()       # X accounts offered to follow after posting


@dataclass(frozen=True)
class Share:
    """One platform's share of one text: the post as the platform will hold it, the
    link that opens its composer, and the length the platform gives that post."""

    platform: str
    post: str
    link: str
    length: LengthCheck


def post_text(text: str, extras: Extras) -> str:
    """The text with the hashtags and link added, as Bluesky, Mastodon and a copy get it."""
    tail = " ".join([*extras.hashtags, *([extras.url] if extras.url else [])])
    return f"{text} {tail}" if tail else text


def x_post(text: str, extras: Extras) -> str:
    """What X's composer holds after the intent has added its parameters. X puts the
    hashtags, then the link, then "via @account" after the text, each after a space;
    the order does not change the length X counts."""
    post = post_text(text, extras)
    return f"{post} via @{extras.via}" if extras.via else post


def x_link(text: str, extras: Extras) -> str:
    params = [("text", text)]
    if extras.hashtags:
        params.append(("hashtags", ",".join(h.removeprefix("#") for h in extras.hashtags)))
    if extras.url:
        params.append(("url", extras.url))
    if extras.via:
        params.append(("via", extras.via))
    if extras.related:
        params.append(("related", ",".join(extras.related)))
    return f"{X_INTENT}?{urlencode(params, quote_via=quote)}"


def text_query(text: str) -> str:
    """`text=…`, the query of Bluesky's and Mastodon's share pages."""
    return urlencode([("text", text)], quote_via=quote)


def share(platform: str, text: str, extras: Extras) -> Share:
    """The share of `text` on `platform` ("x", "bluesky" or "mastodon"); its length is
    checked by the project's own rules against the platform's default limit (a
    Mastodon server may allow more than 500, never assumed here)."""
    if platform == "x":
        post = x_post(text, extras)
        link = x_link(text, extras)
    elif platform == "bluesky":
        post = post_text(text, extras)
        link = f"{BLUESKY_INTENT}?{text_query(post)}"
    elif platform == "mastodon":
        post = post_text(text, extras)
        link = f"{MASTODON_SHARE}?{text_query(post)}"
    else:
        raise ValueError(f"no share link for platform {platform!r}")
    return Share(platform=platform, post=post, link=link, length=check_length(platform, post))
