"""The parts of a post a platform turns into links: URLs, hashtags and mentions.

For showing a post as its platform will (the dashboard's cards), not for counting:
lengths are `content.rules`. URLs are found by the same rules the X count uses
(`find_urls`); Mastodon links only URLs with a scheme, as it counts them.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

import regex

from content.rules import find_urls

Kind = Literal["text", "link", "tag", "mention"]

# A hashtag: "#" then word characters with at least one letter ("#1" is no tag), not
# glued to a word, an "&" (an HTML entity) or a path before it.
_TAG = regex.compile(r"(?<![\w#/&])[#＃](?=\w*[^\W\d_])\w+")
# A mention as any of the three platforms writes one: "@name" (X), "@user@server.org"
# (Mastodon), "@handle.bsky.social" (Bluesky); never inside an e-mail address.
_MENTION = regex.compile(r"(?<![\w@.])@[A-Za-z0-9_]+(?:[.@-][A-Za-z0-9_-]+)*(?<![.-])")


@dataclass(frozen=True)
class Segment:
    kind: Kind
    text: str

    @property
    def href(self) -> str | None:
        """Where a link goes (a scheme added to a bare domain), None for the rest."""
        if self.kind != "link":
            return None
        return self.text if "://" in self.text else "https://" + self.text


def segments(text: str, platform: str) -> list[Segment]:
    """`text` cut into plain runs and the links, hashtags and mentions in it, in order;
    joined back they are `text` exactly."""
    spans: list[tuple[int, int, Kind]] = []
    for start, end in find_urls(text):
        if platform == "mastodon" and "://" not in text[start:end]:
            continue
        spans.append((start, end, "link"))
    for pattern, kind in ((_TAG, "tag"), (_MENTION, "mention")):
        for m in pattern.finditer(text):
            if not any(s < m.end() and m.start() < e for s, e, _ in spans):
                spans.append((m.start(), m.end(), kind))  # type: ignore[arg-type]
    out: list[Segment] = []
    at = 0
    for start, end, kind in sorted(spans):
        if start > at:
            out.append(Segment("text", text[at:start]))
        out.append(Segment(kind, text[start:end]))
        at = end
    if at < len(text):
        out.append(Segment("text", text[at:]))
    return out


def glued_links(text: str, hashtags: Sequence[str], links: Sequence[str] = ()) -> list[str]:
    """Warnings for links a platform would read longer than the writer meant: a
    campaign hashtag right after a link (`…/eastside#SaveEastside` is one address, with
    a fragment), or one of the campaign's own links (`links`, e.g. a petition URL from
    its vars) with a word glued on after it (`…/keep-the-owlSign`)."""
    return Glue.of(tuple(hashtags), tuple(links))(text)


class Glue:
    """`glued_links` for one set of hashtags and links, for many texts (planning checks
    100,000): whether a text may hold a glued link at all is two regular expressions
    made once, and only a text where one matches has its links parsed."""

    def __init__(self, hashtags: Sequence[str], links: Sequence[str]) -> None:
        self.hashtags, self.links = tuple(hashtags), tuple(links)
        self.tags = {h.lstrip("#＃").casefold() for h in hashtags}
        # a hashtag (case folded, in the folded text) with a character before it that
        # is not white space (`\s` is exactly `str.isspace`); one of the links with
        # such a character after it
        self.tag_after = (re.compile("(?<=\\S)(?:" + "|".join(
            re.escape(h.casefold()) for h in hashtags) + ")") if hashtags else None)
        self.link_before = (re.compile("(?:" + "|".join(re.escape(k) for k in links) + ")(?=\\S)")
                            if links else None)

    @staticmethod
    @functools.lru_cache(maxsize=64)
    def of(hashtags: tuple[str, ...], links: tuple[str, ...]) -> Glue:
        return Glue(hashtags, links)

    def __call__(self, text: str) -> list[str]:
        """`glued_links(text, hashtags, links)`."""
        if not ((self.tag_after is not None and self.tag_after.search(text.casefold()))
                or (self.link_before is not None and self.link_before.search(text))):
            return []   # the common case, without parsing links
        out = []
        for start, end in find_urls(text):
            link = text[start:end]
            base, hash_, fragment = link.partition("#")
            if hash_ and fragment.casefold() in self.tags:
                out.append(f"the link {base} runs into #{fragment}: a platform links \"{link}\" "
                           "as one address; put a space or a line break between them")
                continue
            for known in self.links:
                rest = link[len(known):]
                if link.startswith(known) and rest and (rest[0].isalnum() or rest[0] in "@＃"):
                    out.append(f"the link {known} runs into \"{rest}\": a platform links "
                               f"\"{link}\" as one address; put a space or a line break "
                               "between them")
                    break
        return out


def own_links(values: Iterable[object]) -> list[str]:
    """The texts among `values` that are exactly one link (a campaign's vars)."""
    out = []
    for v in values:
        if isinstance(v, str) and find_urls(v) == [(0, len(v))]:
            out.append(v)
    return sorted(set(out), key=len, reverse=True)   # the longest first: the best match


# A number a person reads exactly, with what joins its digits: a phone number
# ("202-456-1111", "(202) 456 1111", "+1 202 456 1111"), an amount, a time, a date.
_NUMBER = regex.compile(r"[+(]?\d(?:[\d().,:/–-]*[\d)])?(?: [(]?\d(?:[\d().,:/–-]*[\d)])?)*")
ELLIPSIS = "…"


def shorten(text: str, width: int, measure: Callable[[str], int] = len) -> str:
    """`text` on one line, at most `width` long (by `measure`, e.g. terminal cells): cut
    at a space with an ellipsis, never inside a word, a link or a number (a phone
    number with spaces in it is one number). A first word too long for `width` leaves
    only the ellipsis: a reader sees something is there, never a wrong piece of it."""
    line = " ".join(text.split())
    if measure(line) <= width:
        return line
    inside: set[int] = set()
    for start, end in [*find_urls(line), *((m.start(), m.end()) for m in _NUMBER.finditer(line))]:
        inside.update(range(start + 1, end))
    cuts = [at for at, ch in enumerate(line) if ch == " " and at not in inside]
    # The longest head that fits, found by halves: a head of more words is never
    # narrower, so each cut need not be measured in turn (a rehearsal's table measured
    # some 30 heads a text, each char by char: rich measures "…" the slow way).
    fits, over = 0, len(cuts)          # the heads before cuts[fits] fit; from cuts[over], not
    while fits < over:
        mid = (fits + over) // 2
        if measure(line[:cuts[mid]].rstrip() + ELLIPSIS) <= width:
            fits = mid + 1
        else:
            over = mid
    best = line[:cuts[fits - 1]].rstrip() if fits else ""
    return best + ELLIPSIS if best else ELLIPSIS[:max(0, width)]
