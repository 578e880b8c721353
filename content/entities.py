"""The parts of a post a platform turns into links: URLs, hashtags and mentions.

For showing a post as its platform will (the dashboard's cards), not for counting:
lengths are `content.rules`. URLs are found by the same rules the X count uses
(`find_urls`); Mastodon links only URLs with a scheme, as it counts them.
"""

from __future__ import annotations

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
