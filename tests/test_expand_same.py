"""What planning makes of a campaign stays exactly what it was: every post (all its
fields, its options), every error and warning, in order, digested, on the examples, on
a campaign like the benchmark's and on ones with every platform, non-ASCII text, links
glued to tags, texts too long, repeats, threads and failing templates; each rendered in
one process and split with a forked child. The digests were recorded with the code
before `content.expand` shared each lane's work among its posts (`_Lane`, `_At`) and
`Apart` tidied its pieces once: a change of what a campaign expands to shows here.

The shortcuts themselves are checked against what they stand for: `Apart.text` against
`_tidy` of the joined text, `Apart.is_clean` against the text check, `Glue` against a
plain search for glued hashtags and links."""

from __future__ import annotations

import hashlib
import json
import random
from datetime import UTC, datetime
from pathlib import Path

import pytest

import content.expand as expand
from bench.common import write_campaign
from content.campaign import load_campaign
from content.chars import forbidden_character
from content.entities import Glue, glued_links
from content.render import Apart, _tidy
from tests import test_render_apart

ROOT = Path(__file__).resolve().parent.parent

_MIXED = '''
[campaign]
slug = "mixed"
title = "Mixed ✊"
deadline = 2099-03-20T12:00:00-05:00
timezone = "Europe/Berlin"
hashtags = ["#Mixed", "#ΣΊΣΥΦΟΣ", "#Straße"]

[vars]
url = "https://example.org/sign"
call = "030 555 0100"
emoji = "👩‍💻✊🏽🇩🇪"
cjk = "日本語のテキスト"

[accounts.xa]
platform = "x"
credentials = "XA"
[accounts.xb]
platform = "x"
credentials = "XB"
[accounts.m1]
platform = "mastodon"
credentials = "M1"
visibility = "unlisted"
[accounts.b1]
platform = "bluesky"
credentials = "B1"
[accounts.d1]
platform = "dryrun"
[accounts.d-example_org]
platform = "dryrun"

[[posts]]
key = "emoji"
template = "emoji.txt.j2"
accounts = ["xa", "xb", "m1", "b1", "d1", "d-example_org"]
schedule = { cron = "*/30 * * * *", from = "T-20h" }
expires = "2h"
content_warning = "cw ✊"

[[posts]]
key = "urls"
text = "{{ account }}.{{ url }} {{ url }}#Mixed {{ url }}x {{ minutes_left }} {{ cjk * (hours_left % 3) }}"
accounts = ["xa", "m1", "b1", "d1", "d-example_org"]
schedule = { cron = "7 * * * *", from = "T-30h" }

[[posts]]
key = "long"
text = "{{ '✊' * (100 + minutes_left % 90) }} {{ account }} #mixed"
accounts = ["xa", "xb", "m1", "b1"]
schedule = { cron = "11 */2 * * *", from = "T-30h" }

[[posts]]
key = "same"
text = "Same for all #Straße {{ hours_left // 5 }}"
accounts = ["xa", "xb", "m1", "d1"]
schedule = { cron = "13 * * * *", from = "T-12h" }

[[posts]]
key = "thread"
text = "{{ account }} {{ time_left }} ΣΊΣΥΦΟΣ"
thread = ["{{ 'é' * 300 }} {{ account }} {{ minutes_left }}", "{{ time_left_in('es') }} {{ url }}"]
accounts = ["xa", "m1", "b1", "d1"]
schedule = { cron = "17 */3 * * *", from = "T-30h" }
language = "de"

[[posts]]
key = "spaces"
text = """

   {{ account }}   trailing   \\n\\n\\n\\n  {{ minutes_left }}   \\n  #MIXED  \\n\\n"""
accounts = ["xa", "m1", "b1", "d1"]
schedule = { cron = "19 * * * *", from = "T-8h" }
'''

_MIXED_TEMPLATE = (
    "{{ account }} {{ emoji }} {{ minutes_left }}\n{% if hours_left > 10 %}\n{{ cjk }} "
    "{{ url }}#Straße\n{% else %}\n\u00e9\u0301 e\u0301 Ω {{ url }}/path?q=1 {{ hashtags }}\n"
    "{% endif %}\n")


def _digest(r: expand.Expansion, folder: Path) -> str:
    """(the folder said as "<folder>": the digest is the same wherever the files are)"""
    def at(d: datetime) -> str:
        return f"{d.isoformat()} {d.tzinfo}"

    def said(value: object) -> bytes:
        return json.dumps(value, ensure_ascii=False).replace(str(folder), "<folder>").encode()
    h = hashlib.sha256()
    for p in r.posts:
        h.update(said([
            p.plan_key, p.post_key, p.account, p.platform, at(p.due_at), at(p.not_after), p.text,
            [p.length.platform, p.length.length, p.length.limit, p.length.ok, p.length.unit],
            p.language, p.visibility, p.content_warning, [[m.path, m.alt] for m in p.media],
            list(p.warnings), p.reply_to_key, p.thread_root_key, p.options()]))
    for e in r.errors:
        h.update(said([str(e), e.file, e.key, e.line, e.message]))
    h.update(said(r.warnings))
    return f"{h.hexdigest()[:20]} {len(r.posts)}/{len(r.errors)}/{len(r.warnings)}"


def _folders(tmp: Path) -> dict[str, Path]:
    out = {name: ROOT / "examples" / name for name in ("petition", "potuspardon")}
    out["bench"] = tmp / "bench"
    write_campaign(out["bench"], accounts=30, fires=150)
    for name, toml, templates in (
            ("apart", test_render_apart._CAMPAIGN, test_render_apart._TEMPLATES),
            ("mixed", _MIXED, {"emoji.txt.j2": _MIXED_TEMPLATE})):
        folder = out[name] = tmp / name
        folder.mkdir()
        (folder / "campaign.toml").write_text(toml, encoding="utf-8")
        for file, text in templates.items():
            (folder / file).write_text(text, encoding="utf-8")
    return out


_NOW = {"petition": [datetime(2027, 2, 15, tzinfo=UTC), datetime(2027, 3, 10, tzinfo=UTC)],
        "potuspardon": [datetime(2017, 1, 15, tzinfo=UTC), datetime(2017, 1, 19, 20, tzinfo=UTC)],
        "bench": [datetime(2099, 1, 1, tzinfo=UTC)],
        "apart": [datetime(2099, 1, 19, 13, tzinfo=UTC), datetime(2099, 1, 1, tzinfo=UTC)],
        "mixed": [datetime(2099, 3, 18, tzinfo=UTC), datetime(2099, 3, 19, 20, tzinfo=UTC)]}
_LIMITS: dict[str, dict[str, int]] = {"apart": {"ma": 120, "mb": 50000}, "mixed": {"m1": 200}}

# recorded with the code before (see the module's docstring): name, now, limits or not
_RECORDED = {
    ('petition', 0, False): '85e4427f1b26411daeec 17/0/0',
    ('petition', 1, False): 'da14f7d7ccbbdcec2a15 12/0/2',
    ('potuspardon', 0, False): 'f368596871e06f7ff48d 46/0/0',
    ('potuspardon', 1, False): 'c326b38e1f0072239280 12/0/5',
    ('bench', 0, False): '3ca7c276b7f73a5009df 4500/0/0',
    ('apart', 0, False): '91ffda0bb8aa8dd3c196 526/23/5',
    ('apart', 0, True): '49406f3b54b9ffcd7d0d 526/30/5',
    ('apart', 1, False): '4f348efd708ce2cb5b6b 566/23/0',
    ('apart', 1, True): '9dcc571a2f979f3f3586 566/30/0',
    ('mixed', 0, False): 'dcd45d7cfe15ac5daa09 650/65/0',
    ('mixed', 0, True): '360f7967e4c2bac6431e 650/75/0',
    ('mixed', 1, False): 'bee470743157c8cadaf2 549/52/3',
    ('mixed', 1, True): '218533cfa8fc8fd301f4 549/59/3',
}


def _digests(tmp: Path) -> dict[tuple[str, int, bool], str]:
    out = {}
    for name, folder in _folders(tmp).items():
        for n, now in enumerate(_NOW[name]):
            for limited in (False, True) if name in _LIMITS else (False,):
                r = expand.expand_campaign(load_campaign(folder, now=now), now=now,
                                           limits=_LIMITS[name] if limited else None)
                out[(name, n, limited)] = _digest(r, folder)
    return out


@pytest.mark.parametrize("forked", [False, True], ids=["one process", "forked child"])
def test_what_campaigns_expand_to_is_what_it_was(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, forked: bool) -> None:
    if forked:   # from 5 units on, a child renders most of them
        monkeypatch.setattr(expand, "FORK_FROM", 5)
        monkeypatch.setattr(expand, "CHUNK", 7)
    assert _digests(tmp_path) == _RECORDED


# characters that `_tidy` and the text check treat apart: white space of every kind
# (line breaks among them), joiners, a tag character, a control, the stand-in's own
_CHARS = [" ", "  ", "\n", "\n\n\n", "\r", "\r\n", "\t", "\x0b", "\x1c", "\x85", "\u2028",
          "\u00a0", "\u3000", "\u200d", "\u200c", "\U000e0067", "\x1b", "\ue000", "\ufeff",
          "a", "b.", "Ω", "✊", "👩", "#", "x"]
_ACCOUNTS = ["a", "acct0001", "x_a", "d-example_org", "Ωmega", "a b", "a\nb", " a", "", "\ue000",
             "a\u200db", "\u00a0"]


def test_a_text_made_of_pieces_tidied_once_is_the_text_tidied() -> None:
    rng = random.Random(12)
    for _ in range(20_000):
        pieces = tuple("".join(rng.choices(_CHARS, k=rng.randrange(0, 6)))
                       for _ in range(rng.randrange(1, 5)))
        apart = Apart(pieces, 0)
        for account in _ACCOUNTS:
            text = apart.text(account)
            assert text == _tidy(account.join(pieces)), (pieces, account)
            if apart.is_clean(account):   # then the text check has nothing to say
                assert text.strip() and forbidden_character(text) is None, (pieces, account)


def _glued_by_search(text: str, hashtags: list[str], links: list[str]) -> bool:
    """The question `Glue` answers with two patterns, asked by hand: a hashtag with
    no white space before it, or a link with no white space after it."""
    lowered = text.casefold()
    for tag in hashtags:
        folded = tag.casefold()
        at = lowered.find(folded)
        while at != -1:
            if at > 0 and not lowered[at - 1].isspace():
                return True
            at = lowered.find(folded, at + 1)
    for link in links:
        at = text.find(link)
        while at != -1:
            after = text[at + len(link):at + len(link) + 1]
            if after and not after.isspace():
                return True
            at = text.find(link, at + 1)
    return False


def test_glued_links_are_looked_for_as_by_hand(monkeypatch: pytest.MonkeyPatch) -> None:
    hashtags = ["#Mixed", "#ΣΊΣΥΦΟΣ", "#Straße", "#m"]
    links = ["https://example.org/sign", "https://example.org/s"]
    glue = Glue(hashtags, links)
    words = ["https://example.org/sign", "https://example.org/s", "#mixed", "#MIXED", "#σίσυφος",
             "#STRASSE", "#m", "x", " ", "\n", "\u00a0", "\u2028", "/", ".", "ß"]
    rng = random.Random(7)
    parsed: list[bool] = []
    real = Glue.__call__

    for _ in range(5_000):
        text = "".join(rng.choices(words, k=rng.randrange(1, 8)))
        expected = _glued_by_search(text, hashtags, links)
        calls: list[str] = []
        monkeypatch.setattr("content.entities.find_urls",
                            lambda t, calls=calls: calls.append(t) or [])
        assert real(glue, text) == []
        assert bool(calls) == expected, text   # links parsed exactly where one may be glued
        parsed.append(expected)
    assert any(parsed) and not all(parsed)
    monkeypatch.undo()
    said = glued_links("sign at https://example.org/sign#Mixed now", hashtags, links)
    assert said and "runs into #Mixed" in said[0]
