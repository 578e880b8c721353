"""`preview` shows everything that goes out and prints the digest of what it showed;
`approve --expect DIGEST` approves only if nothing changed since; a re-plan that
changes a draft leaves an event with the difference. Through the real CLI."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import create_engine, text

from tests.conftest import CampaignFactory, CliResult, simple_toml

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(64))
ACCOUNTS = """
    [accounts.org]
    platform = "dryrun"

    [accounts.masto]
    platform = "mastodon"
    credentials = "MASTO"
"""
POSTS = """
    [[posts]]
    key = "poster"
    text = "See the poster. {{ hashtags }}"
    accounts = ["org"]
    schedule = { at = "T-1d" }
    media = [{ path = "poster.png", alt = "A poster: vote yes on Prop 5" }]
    thread = ["And share it with a friend."]

    [[posts]]
    key = "quiet"
    text = "Polls close tomorrow."
    accounts = ["masto"]
    schedule = { at = "T-1d" }
    content_warning = "election reminder"
    visibility = "unlisted"
    language = "en"
"""
DIGEST = re.compile(r"--expect ([0-9a-f]{64})")


def _folder(make_campaign: CampaignFactory) -> Path:
    folder = make_campaign(simple_toml(accounts=ACCOUNTS, posts=POSTS))
    (folder / "poster.png").write_bytes(PNG)
    return folder


def _digest(cli: Callable[..., CliResult]) -> str:
    r = cli("preview", "testcamp")
    assert r.code == 0, r.err
    found = DIGEST.search(r.out.replace("\n", ""))
    assert found, r.out
    return found.group(1)


def _states(tmp_path: Path) -> list[str]:
    engine = create_engine(f"sqlite:///{tmp_path}/tminus.db")
    with engine.connect() as conn:
        return [row[0] for row in conn.execute(text("SELECT state FROM post ORDER BY id"))]


def test_the_table_shows_everything_that_is_sent(cli: Callable[..., CliResult],
                                                  make_campaign: CampaignFactory) -> None:
    assert cli("plan", str(_folder(make_campaign))).code == 0
    r = cli("preview", "testcamp")
    assert r.code == 0, r.err
    assert "poster.png (image/png) alt: A poster: vote yes on Prop 5" in r.out
    assert "CW: election reminder" in r.out
    assert "visibility: unlisted · language: en" in r.out
    assert "↳ reply to #2" in r.out
    # the reply comes right after the post it answers
    assert r.out.index("See the poster") < r.out.index("↳ reply to #2") < r.out.index("share it")
    assert "None of these posts has been published. Digest of the 3 draft(s) shown" in r.out


def test_json_and_html_show_media_cw_threads_and_the_truth(
        cli: Callable[..., CliResult], make_campaign: CampaignFactory, tmp_path: Path) -> None:
    assert cli("plan", str(_folder(make_campaign))).code == 0
    r = cli("preview", "testcamp", "--format", "json")
    [t] = json.loads(r.out)
    assert len(t["digest"]) == 64 and t["drafts"] == 3
    quiet, poster, reply = t["rows"]
    assert poster["media"][0]["alt"] == "A poster: vote yes on Prop 5"
    assert poster["media"][0]["type"] == "image/png"
    assert (reply["reply_to"], reply["depth"]) == (f"#{poster['id']}", 1)
    assert (quiet["content_warning"], quiet["visibility"], quiet["language"]) == (
        "election reminder", "unlisted", "en")
    # Mastodon counts the content warning with the text: 21 + 17
    assert (quiet["length"], quiet["limit"]) == (21 + 17, 500)

    page = tmp_path / "p.html"
    assert cli("preview", "testcamp", "-f", "html", "-o", str(page)).code == 0
    html = page.read_text()
    assert 'src="data:image/png;base64,' in html and "alt: A poster: vote yes on Prop 5" in html
    assert "CW: election reminder" in html and "counted in the length" in html
    assert 'class="post reply"' in html
    assert "None of these posts has been published" in html
    assert "http://" not in html.replace("http://www.w3.org", "") and "https://" not in html

    engine = create_engine(f"sqlite:///{tmp_path}/tminus.db")
    with engine.begin() as conn:   # (its time is in 2099: published as the daemon would)
        conn.execute(text("UPDATE post SET state = 'published' WHERE id = :id"),
                     {"id": poster["id"]})
    assert cli("preview", "testcamp", "-f", "html", "-o", str(page)).code == 0
    assert "1 of these 3 posts have been published" in page.read_text()


def test_approve_expect_takes_only_what_was_shown(
        cli: Callable[..., CliResult], make_campaign: CampaignFactory, tmp_path: Path) -> None:
    folder = _folder(make_campaign)
    assert cli("plan", str(folder)).code == 0
    shown = _digest(cli)
    # the image is replaced after the preview: the digest no longer matches
    (folder / "poster.png").write_bytes(PNG + b"changed")
    r = cli("approve", "testcamp", "--by", "ana", "--expect", shown)
    assert r.code == 2 and "nothing was approved" in r.err
    assert set(_states(tmp_path)) == {"draft"}
    (folder / "poster.png").write_bytes(PNG)
    assert _digest(cli) == shown
    r = cli("approve", "testcamp", "--by", "ana", "--expect", shown)
    assert r.code == 0, r.err
    assert set(_states(tmp_path)) == {"queued"}


def test_a_replan_between_preview_and_approve_is_an_event_and_breaks_the_digest(
        cli: Callable[..., CliResult], make_campaign: CampaignFactory, tmp_path: Path) -> None:
    folder = _folder(make_campaign)
    assert cli("plan", str(folder)).code == 0
    shown = _digest(cli)
    toml = (folder / "campaign.toml").read_text()
    (folder / "campaign.toml").write_text(toml.replace("Polls close tomorrow.", "Polls close soon.")
                                          .replace('visibility = "unlisted"', 'visibility = "public"'))
    r = cli("plan", str(folder))
    assert r.code == 0 and "draft 1 changed" in r.out and "+Polls close soon." in r.out
    log = cli("log", "1")
    assert "changed in the campaign file by a re-plan" in log.out
    assert "-Polls close tomorrow." in log.out and "visibility: 'unlisted' → 'public'" in log.out
    r = cli("approve", "testcamp", "--by", "ana", "--expect", shown)
    assert r.code == 2 and set(_states(tmp_path)) == {"draft"}
    assert cli("approve", "testcamp", "--by", "ana", "--expect", _digest(cli)).code == 0
