"""The supporters' toolkit without a browser: the texts over the countdown, the share
links, the lengths, the letter's segments, bad [toolkit] input, and the site on disk.
The page itself in Chromium is tests/test_toolkit_browser.py."""

from __future__ import annotations

import functools
import itertools
import json
import random
import textwrap
import threading
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from content.campaign import Campaign, load_campaign
from content.render import Renderer, base_context, post_context
from content.rules import check_length
from content.toolkit import letter as letters
from content.toolkit.share import Extras, x_post
from content.toolkit.texts import Kit, build_kit, seconds_left, step_at, steps_of
from content.toolkit.words import WORDS
from scheduler.toolkit.serve import make_server, url_of
from scheduler.toolkit.site import MARKER, index_data
from tests.conftest import ROOT, CampaignFactory, CliResult

Cli = Callable[..., CliResult]
POTUS = ROOT / "examples" / "potuspardon"
PETITION = ROOT / "examples" / "petition"
ET = "-05:00"
IN_FOUR_DAYS = datetime.fromisoformat("2017-01-16T08:00:00-05:00")
KIT_AS_OF = ("--as-of", "2099-01-10T12:00:00-05:00")   # ten days before _toml's deadline


def _kit(folder: Path, as_of: datetime) -> Kit:
    campaign = load_campaign(folder)
    assert campaign.toolkit is not None
    return build_kit(campaign, campaign.toolkit, as_of=as_of.astimezone(UTC))


@functools.cache
def _campaign(folder: Path) -> Campaign:
    return load_campaign(folder)


def _rendered_at(folder: Path, key: str, lang: str, platform: str, at: datetime) -> str:
    """A suggested post rendered afresh for the instant `at` (not a step)."""
    campaign = _campaign(folder)
    assert campaign.toolkit is not None
    spec = next(p for p in campaign.toolkit.posts if p.key == key)
    source = spec.sources[lang]
    base = base_context(campaign=campaign, account="supporter", platform=platform,
                        extra_vars=spec.vars, language=lang)
    context = post_context(base, campaign=campaign, due=at)
    renderer = _renderer(campaign.folder)
    if source.template:
        return renderer.render(source.template, context)
    return renderer.render("inline", context, source=source.text)


@functools.cache
def _renderer(folder: Path) -> Renderer:
    return Renderer(folder)


def _shown(kit: Kit, lang: str, key: str, platform: str, at: datetime) -> str:
    """The text the page shows for `key` on `platform` at the instant `at`."""
    post = next(p for p in kit.pages[lang].posts if p.key == key)
    row = next(r for r in post.rows if platform in r.platforms)
    return step_at(row.steps, seconds_left(kit.deadline, at)).shares[platform].post


# -- texts over the countdown ----------------------------------------------------------


def test_every_step_is_the_text_rendered_at_any_instant_it_covers() -> None:
    kit = _kit(POTUS, IN_FOUR_DAYS)
    rng = random.Random(15)
    span = (kit.deadline - kit.as_of).total_seconds()
    instants = [kit.as_of + timedelta(seconds=rng.uniform(0, span)) for _ in range(150)]
    instants += [kit.deadline - timedelta(seconds=s) for s in (86400, 86399.5, 3600, 3599.999, 1, 0.2)]
    extras = Extras(hashtags=kit.toolkit.hashtags, url=kit.toolkit.url, via=kit.toolkit.via)
    for lang in ("en", "es"):
        for key in ("ask", "families", "who-asks"):
            for platform in ("x", "bluesky", "mastodon"):
                for at in instants:
                    fresh = _rendered_at(POTUS, key, lang, platform, at)
                    want = x_post(fresh, extras) if platform == "x" else \
                        f"{fresh} {' '.join(kit.toolkit.hashtags)}"
                    assert _shown(kit, lang, key, platform, at) == want, (key, lang, platform, at)


def test_a_days_left_text_does_not_still_say_three_days_on_the_last_morning() -> None:
    kit = _kit(POTUS, IN_FOUR_DAYS)
    tuesday = datetime.fromisoformat(f"2017-01-17T09:00:00{ET}")
    friday = datetime.fromisoformat(f"2017-01-20T09:00:00{ET}")
    assert _shown(kit, "en", "ask", "x", tuesday).startswith(".@POTUS, you have 3 days left")
    last_morning = _shown(kit, "en", "ask", "x", friday)
    assert last_morning.startswith(".@POTUS, 3 hours left.")
    assert "days" not in last_morning
    assert _shown(kit, "es", "ask", "bluesky", friday).startswith("Presidente Obama, le quedan 3 horas.")


def test_steps_follow_the_deadlines_days_then_hours_then_minutes() -> None:
    def render(s: int) -> str:
        return f"{s // 86400} days" if s >= 86400 else f"{s // 3600} hours" if s >= 3600 else f"{s // 60} min"
    steps, finer = steps_of(render, 2 * 86400 + 5)
    assert not finer
    assert [s.text for s in steps[:3]] == ["2 days", "1 days", "23 hours"]
    assert steps[0].hi == 2 * 86400 + 5 and steps[0].lo == 2 * 86400
    assert len(steps) == 2 + 23 + 60                      # days, hours of the last day, last-hour minutes
    assert steps[-1].lo == 0 and all(a.lo == b.hi + 1 for a, b in itertools.pairwise(steps))

    seconds, finer = steps_of(lambda s: f"{s} seconds", 130)
    assert finer                                          # a minute is the finest step
    assert step_at(seconds, 125).text == "120 seconds"    # the least time left in its minute


def test_a_text_with_seconds_in_it_warns(make_campaign: CampaignFactory) -> None:
    folder = make_campaign(_toml('text = "Only {{ time_left }} left to ask."'))
    campaign = load_campaign(folder)
    assert campaign.toolkit is not None
    deadline = campaign.deadline
    kit = build_kit(campaign, campaign.toolkit, as_of=deadline - timedelta(minutes=90))
    assert any("changes within a minute" in w for w in kit.warnings)
    shown = _shown(kit, "en", "ask", "x", deadline - timedelta(minutes=45, seconds=30))
    assert shown.startswith("Only 45 minutes left")


# -- share links and lengths --------------------------------------------------------------


def _every_share(kit: Kit) -> list[tuple[str, object]]:
    out = []
    for page in kit.pages.values():
        for post in page.posts:
            for row in post.rows:
                for step in row.steps:
                    for platform, s in step.shares.items():
                        out.append((platform, (step, s)))
    return out


@pytest.mark.parametrize("folder, as_of", [(POTUS, IN_FOUR_DAYS),
                                           (PETITION, datetime.fromisoformat("2027-03-05T12:00:00-05:00"))])
def test_every_share_link_parses_back_to_exactly_the_rendered_text(folder: Path, as_of: datetime) -> None:
    kit = _kit(folder, as_of)
    shares = _every_share(kit)
    assert len(shares) > 50
    tags = [h.removeprefix("#") for h in kit.toolkit.hashtags]
    for platform, (step, s) in shares:                                   # type: ignore[misc]
        parts = urlsplit(s.link)
        query = parse_qs(parts.query, keep_blank_values=True, strict_parsing=True)
        if platform == "x":
            assert (parts.scheme, parts.netloc, parts.path) == ("https", "x.com", "/intent/tweet")
            assert query["text"] == [step.text]
            assert query.get("hashtags", [""])[0].split(",") == (tags or [""])
            assert query.get("url") == ([kit.toolkit.url] if kit.toolkit.url else None)
            assert query.get("related") == ([",".join(kit.toolkit.related)] if kit.toolkit.related else None)
            assert s.post == " ".join([step.text, *kit.toolkit.hashtags, *filter(None, [kit.toolkit.url])])
        elif platform == "bluesky":
            assert (parts.netloc, parts.path) == ("bsky.app", "/intent/compose")
            assert query == {"text": [s.post]} and s.post == step.copy
        else:
            assert parts.path == "/share" and parts.netloc == "{instance}"
            assert query == {"text": [s.post]} and s.post == step.copy


@pytest.mark.parametrize("folder, as_of", [(POTUS, IN_FOUR_DAYS),
                                           (PETITION, datetime.fromisoformat("2027-03-05T12:00:00-05:00"))])
def test_every_text_fits_its_platform_by_the_projects_length_rules(folder: Path, as_of: datetime) -> None:
    for platform, (_, s) in _every_share(_kit(folder, as_of)):            # type: ignore[misc]
        check = check_length(platform, s.post)
        assert check.ok and check == s.length


def test_the_x_length_counts_hashtags_link_and_via(make_campaign: CampaignFactory) -> None:
    # 240 characters fit alone; with " #TestTag" (9), a link (1 + 23) and " via @ActOrg" (12): 285
    folder = make_campaign(_toml(f'text = "{"a" * 240}"', extra='url = "https://example.org/act"\nvia = "ActOrg"'))
    campaign = load_campaign(folder)
    assert campaign.toolkit is not None
    with pytest.raises(Exception) as e:
        build_kit(campaign, campaign.toolkit, as_of=campaign.deadline - timedelta(days=2))
    assert "285 weighted chars on X with what its share link adds, over the limit of 280" in str(e.value)
    assert "[toolkit.posts.ask]" in str(e.value)


# -- the letter -------------------------------------------------------------------------


def test_the_letter_filled_in_is_the_templates_own_rendering() -> None:
    campaign = load_campaign(PETITION)
    assert campaign.toolkit is not None and campaign.toolkit.letter is not None
    kit = build_kit(campaign, campaign.toolkit, as_of=datetime(2027, 3, 5, tzinfo=UTC))
    renderer = Renderer(PETITION)
    for values in ({"name": "Ana Ruiz", "neighborhood": "Eastside", "route": "N4 Owl",
                    "reason": "my shift at St. Mary's"},
                   {"name": "  Zoë  ", "neighborhood": "", "route": "🚌", "reason": "a b  "}):
        for lang in ("en", "es"):
            fill_in = kit.pages[lang].letter
            assert fill_in is not None
            base = base_context(campaign=campaign, account="supporter", platform="email",
                                extra_vars={}, language=lang)
            template = campaign.toolkit.letter.body[lang].template
            assert template is not None
            want = renderer.render(template, letters.context_with(base, values))
            assert letters.fill(fill_in.body, values) == want
    assert [kind for kind, _ in kit.pages["en"].letter.body].count("blank") == 6   # type: ignore[union-attr]


# -- after the deadline ---------------------------------------------------------------------


def test_after_the_deadline_the_site_has_no_share_link(cli: Cli, tmp_path: Path) -> None:
    site = tmp_path / "site"
    r = cli("toolkit", str(POTUS), "-o", str(site), "--as-of", "2017-01-20T12:00:00-05:00")
    assert r.code == 0, r.err
    assert "closed" in r.out
    for page in (site / "index.html", site / "es" / "index.html"):
        html = page.read_text(encoding="utf-8")
        assert "intent" not in html and "share?" not in html and "tel:" not in html
        assert 'data-timed' not in html and 'id="closed"' in html
    assert "The pardon power passed to the next president" in (site / "index.html").read_text()
    index = json.loads((site / "index.json").read_text())
    assert index["closed"] is True and index["posts"] == [] and index["calls"] == []


# -- bad [toolkit] input -------------------------------------------------------------------------


def _toml(post: str = 'text = "Ask them today."', *, extra: str = "", tail: str = "") -> str:
    return textwrap.dedent("""
        [campaign]
        slug = "kit"
        title = "Kit campaign"
        deadline = 2099-01-20T12:00:00-05:00
        timezone = "America/New_York"
        hashtags = ["#TestTag"]

        [accounts.org]
        platform = "dryrun"

        [toolkit]
        """) + extra + "\n\n[[toolkit.posts]]\nkey = \"ask\"\n" + post + "\n" + tail


BAD = [
    ("unknown key", _toml(extra='colour = "red"'), ":13 [toolkit.colour]: unknown key"),
    ("a language without page wording", _toml(extra='languages = ["fr"]'), "no page wording for 'fr'"),
    ("a number without a country", _toml(tail='[[toolkit.calls]]\nname = "Line"\nnumber = "202-456-1111"\nscript = "Hi"'),
     "[toolkit.calls[0].number]: '202-456-1111' has no country code"),
    ("a number that is no number", _toml(tail='[[toolkit.calls]]\nname = "Line"\nnumber = "+1 12"\nscript = "Hi"'),
     "is not a phone number"),
    ("a call without a script", _toml(tail='[[toolkit.calls]]\nname = "Line"\nnumber = "+1 202-456-1111"'),
     "[toolkit.calls[0].script]: give the caller a short script"),
    ("a url without a scheme", _toml(extra='url = "example.org"'), "[toolkit.url]: the page supporters share"),
    ("via with a space", _toml(extra='via = "Act Org"'), "[toolkit.via]: 'Act Org' is not an X account"),
    ("a missing template", _toml('template = "nope.txt.j2"'), "template file 'nope.txt.j2' not found"),
    ("a template outside the folder", _toml('template = "../../etc/passwd"'), "must be a file inside the campaign folder"),
    ("text and template", _toml('text = "a"\ntemplate = "b.j2"'), "give exactly one of `template`"),
    ("a post without a key", _toml().replace('key = "ask"', ""), "every suggested post needs a key"),
    ("text in a language not offered", _toml('text = { en = "a", de = "b" }'), "language 'de' is not in toolkit.languages"),
    ("a hashtag the link adds too", _toml('text = "Ask them #TestTag"'), "already holds #TestTag"),
    ("an undefined variable", _toml('text = "Call {{ call_lin }}"'), "undefined variable: call_lin"),
    ("a text that renders empty", _toml('text = "{% if days_left > 999999 %}x{% endif %}"'), "renders to an empty text"),
    ("a bidi override", _toml('text = "Ask \\u202e them"'), "direction-override"),
    ("bad hashtags", _toml(extra='hashtags = ["no spaces allowed"]'), "is not a hashtag"),
    ("bad platforms", _toml(extra='platforms = ["facebook"]'), "[toolkit.platforms]: list where supporters share"),
    ("toolkit not a table", "toolkit = 5\n" + _toml().split("[toolkit]")[0], "[toolkit]: write the toolkit as a [toolkit] table"),
    ("an empty toolkit", _toml().split("[[toolkit.posts]]")[0], "a toolkit needs at least one of"),
    ("an undeclared blank", _toml(tail='[toolkit.letter]\nsubject = "S"\ntext = "Hi {{ fill.nmae }}"\n[toolkit.letter.blanks]\nname = "Your name"'),
     "{{ fill.nmae }} is not a blank; declare it in [toolkit.letter.blanks] (declared: name)"),
    ("a filter on a blank", _toml(tail='[toolkit.letter]\nsubject = "S"\ntext = "Hi {{ fill.name|upper }}"\n[toolkit.letter.blanks]\nname = "Your name"'),
     "a blank may only be printed as it is"),
    ("an if on a blank", _toml(tail='[toolkit.letter]\nsubject = "S"\ntext = "Hi{% if fill.name %} {{ fill.name }}{% endif %}"\n[toolkit.letter.blanks]\nname = "Your name"'),
     "a blank may only be printed as it is"),
    ("the countdown in the letter", _toml(tail='[toolkit.letter]\nsubject = "S"\ntext = "{{ days_left }} days"\n[toolkit.letter.blanks]\nname = "Your name"'),
     "`days_left` is not there: the letter reads the same whatever the day"),
    ("a bad letter address", _toml(tail='[toolkit.letter]\nto = "nobody"\nsubject = "S"\ntext = "Hi"'), "[toolkit.letter.to]"),
    ("a label missing a language", _toml(extra='languages = ["en", "es"]\ntitle = { en = "Only English" }'),
     "[toolkit.title]: missing the 'es' text"),
]


@pytest.mark.parametrize("case, toml, message", BAD, ids=[c for c, _, _ in BAD])
def test_bad_toolkit_input_is_one_line_exit_2_and_nothing_written(
        case: str, toml: str, message: str, cli: Cli, make_campaign: CampaignFactory,
        tmp_path: Path) -> None:
    folder = make_campaign(toml)
    site = tmp_path / "site"
    r = cli("toolkit", str(folder), "-o", str(site), *KIT_AS_OF)
    assert r.code == 2, (r.out, r.err)
    assert message in " ".join(r.err.split()), r.err
    assert "Traceback" not in r.err and str(folder / "campaign.toml") in r.err
    assert not site.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".site")] == []


def test_a_far_deadline_or_a_text_of_too_many_steps_is_refused(
        cli: Cli, make_campaign: CampaignFactory, tmp_path: Path) -> None:
    folder = make_campaign(_toml('text = "{{ days_left }} days to go."'))
    r = cli("toolkit", str(folder), "-o", str(tmp_path / "s"), "--as-of", "2026-01-01T00:00:00+00:00")
    assert r.code == 2 and "days after the build; build the toolkit within 400 days" in " ".join(r.err.split())
    folder = make_campaign(_toml('text = "{{ minutes_left }} minutes to go."'))
    r = cli("toolkit", str(folder), "-o", str(tmp_path / "s"), "--as-of", "2098-12-20T00:00:00+00:00")
    assert r.code == 2 and "changes more than 3,000 times before the deadline" in " ".join(r.err.split())
    assert not (tmp_path / "s").exists()


def test_validate_reports_toolkit_problems_too(cli: Cli, make_campaign: CampaignFactory) -> None:
    r = cli("validate", str(make_campaign(_toml(extra='languages = ["fr"]'))))
    assert r.code == 2 and "toolkit.languages" in r.err


def test_a_post_starting_with_a_mention_warns(cli: Cli, make_campaign: CampaignFactory, tmp_path: Path) -> None:
    r = cli("toolkit", str(make_campaign(_toml('text = "@POTUS, pardon them."'))), "-o", str(tmp_path / "s"), *KIT_AS_OF)
    assert r.code == 0, r.err
    said = " ".join(r.out.split())
    assert "starts with @POTUS" in said and "write .@POTUS or move the mention" in said


# -- the site on disk -------------------------------------------------------------------------


def test_the_examples_build(cli: Cli, tmp_path: Path) -> None:
    r = cli("toolkit", str(POTUS), "-o", str(tmp_path / "potus"), "--as-of", "2017-01-17T13:30:00-05:00")
    assert r.code == 0, r.err
    assert "3 suggested post(s)" in r.out and "1 call line(s)" in r.out
    assert sorted(p.relative_to(tmp_path / "potus").as_posix() for p in (tmp_path / "potus").rglob("*")
                  if p.is_file()) == [MARKER, "es/index.html", "index.html", "index.json",
                                      "toolkit.css", "toolkit.js"]
    html = (tmp_path / "potus" / "es" / "index.html").read_text()
    assert '<html lang="es">' in html and 'href="tel:+12024561111"' in html
    assert "Cuatro días. Un indulto." in html and 'src="../toolkit.js"' in html

    r = cli("toolkit", "build", str(PETITION), "-o", str(tmp_path / "owl"), "--as-of", "2027-03-08T12:00:00-05:00")
    assert r.code == 0, r.err
    assert "a fill-in letter" in r.out
    assert 'for="fill-neighborhood"' in (tmp_path / "owl" / "index.html").read_text()


def test_index_json_has_every_text_per_platform_and_language() -> None:
    kit = _kit(POTUS, IN_FOUR_DAYS)
    index = index_data(kit)
    combos = {(p["key"], p["language"], p["platform"]) for p in index["posts"]}
    assert combos == {(k, lang, p) for k in ("ask", "families", "who-asks") for lang in ("en", "es")
                      for p in ("x", "bluesky", "mastodon")}
    ask = next(p for p in index["posts"] if (p["key"], p["language"], p["platform"]) == ("ask", "en", "x"))
    assert ask["versions"][0]["from"] == "2017-01-16T13:00:00Z"           # the build instant
    assert ask["versions"][-1]["until"] == "2017-01-20T17:00:00Z"          # the deadline
    for a, b in itertools.pairwise(ask["versions"]):
        assert a["until"] == b["from"]
    assert {c["language"] for c in index["calls"]} == {"en", "es"}


def test_a_rebuild_replaces_the_site_and_a_foreign_folder_is_refused(
        cli: Cli, make_campaign: CampaignFactory, tmp_path: Path) -> None:
    folder = make_campaign(_toml())
    site = tmp_path / "site"
    assert cli("toolkit", str(folder), "-o", str(site), *KIT_AS_OF).code == 0
    (site / "stale.html").write_text("old")
    assert cli("toolkit", str(folder), "-o", str(site), *KIT_AS_OF).code == 0
    assert not (site / "stale.html").exists() and (site / "index.html").is_file()

    before = (site / "index.html").read_bytes()
    (folder / "campaign.toml").write_text(_toml(extra='languages = ["fr"]'))
    assert cli("toolkit", str(folder), "-o", str(site), *KIT_AS_OF).code == 2
    assert (site / "index.html").read_bytes() == before                   # a failed build leaves it

    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    (folder / "campaign.toml").write_text(_toml())
    r = cli("toolkit", str(folder), "-o", str(mine), *KIT_AS_OF)
    assert r.code == 2 and "a folder tminus did not write" in r.err
    assert (mine / "notes.txt").read_text() == "keep me"


def test_a_campaign_without_a_toolkit_is_told_how(cli: Cli, make_campaign: CampaignFactory, tmp_path: Path) -> None:
    folder = make_campaign(_toml().split("[toolkit]")[0])
    r = cli("toolkit", str(folder), "-o", str(tmp_path / "s"), *KIT_AS_OF)
    assert r.code == 2 and "no [toolkit] section" in r.err


def test_serve_previews_the_site_on_localhost(cli: Cli, tmp_path: Path) -> None:
    site = tmp_path / "site"
    assert cli("toolkit", str(PETITION), "-o", str(site), "--as-of", "2027-03-08T12:00:00-05:00").code == 0
    server = make_server(site, port=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        base = url_of(server)
        assert base.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(base + "es/", timeout=10) as page:
            assert '<html lang="es">' in page.read().decode()
        with urllib.request.urlopen(base + "index.json", timeout=10) as data:
            assert json.loads(data.read())["campaign"] == "keep-the-owl"
    finally:
        server.shutdown()
        server.server_close()
    r = cli("toolkit", "serve", str(tmp_path))
    assert r.code == 2 and "not a toolkit site" in r.err


def test_every_page_language_has_every_word() -> None:
    for lang, words in WORDS.items():
        assert set(words) == set(WORDS["en"]), lang
        assert len(words["weekdays"].split()) == 7 and len(words["months"].split()) == 12
