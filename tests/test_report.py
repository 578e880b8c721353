"""The campaign report: its figures equal the database's and the fake platforms'
counts, read through the real SDKs (Mastodon GET /api/v1/statuses/:id, Bluesky
app.bsky.feed.getPosts, X GET /2/tweets with public_metrics — the last only when
TMINUS_ENGAGEMENT_X says so); lateness, expiry and failure reasons from the queue."""

from __future__ import annotations

import dataclasses
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import select

from jobs.errors import PermanentError
from scheduler.clock import VirtualClock
from scheduler.db import session
from scheduler.models import Post, PostEngagement, PostState
from scheduler.report import render_html, render_json
from scheduler.service.report import campaign_report, fetch_engagement
from tests.conftest import CampaignFactory
from tests.fakeplatform import engagement
from tests.platform_world import world
from tests.test_pause import LAST_CALL, _approved
from tests.test_queue import Scripted, _worker

S = PostState
COUNTS = {"x": (11, 3, 2), "mastodon": (7, 5, 1), "bluesky": (20, 0, 4)}


def test_engagement_is_read_from_each_platform_and_reported(
        make_campaign: CampaignFactory, tmp_path: Path) -> None:
    with world(make_campaign, tmp_path, ["x", "mastodon", "bluesky"]) as w:
        w.worker.tick()
        posts = {p: w.post(a) for p, a in (("x", "org_x"), ("mastodon", "org_masto"),
                                            ("bluesky", "org_bsky"))}
        assert {p.state for p in posts.values()} == {S.PUBLISHED}
        for platform, (likes, reposts, replies) in COUNTS.items():
            engagement.set_counts(w.fake, platform, str(posts[platform].remote_id), likes=likes,
                                  reposts=reposts, replies=replies)
        # X bills reads: not read unless enabled, and not a single request sent for it
        off = fetch_engagement(w.engine, w.worker.settings, w.clock.now(), publishers=w.publishers)
        assert (off.read, off.errors) == (2, [])
        assert off.skipped == ["org_x: X counts are not read unless TMINUS_ENGAGEMENT_X=1 "
                               "(X bills reads)"]
        assert w.fake.requests_to("GET", r"^/2/tweets$") == []
        assert len(w.fake.requests_to("GET", r"^/api/v1/statuses/\d+$")) == 1
        assert len(w.fake.requests_to("GET", r"getPosts$")) == 1
        # read within the minute: nothing is asked again
        w.clock.advance(30)
        assert fetch_engagement(w.engine, w.worker.settings, w.clock.now(),
                                publishers=w.publishers).read == 0
        w.clock.advance(60)
        on = dataclasses.replace(w.worker.settings, engagement_x=True)
        r = fetch_engagement(w.engine, on, w.clock.now(), publishers=w.publishers)
        assert (r.read, r.skipped, r.errors) == (3, [], [])
        assert len(w.fake.requests_to("GET", r"^/2/tweets$")) == 1

        with session(w.engine) as s:
            stored = {e.post_id: (e.likes, e.reposts, e.replies)
                      for e in s.exec(select(PostEngagement)).all()}
        assert stored == {posts[p].id: COUNTS[p] for p in COUNTS}
        report = campaign_report(w.engine, "faults", w.clock.now())
        assert report.counts == {"published": 3} and (report.on_time, report.late) == (3, 0)
        figures = {row.platform: (row.likes, row.reposts, row.replies) for row in report.rows}
        assert figures == COUNTS
        assert [(b.platform, b.row.id) for b in report.best] == sorted(
            (p, posts[p].id) for p in COUNTS)
        assert all(row.url for row in report.rows)


def test_lateness_expiry_and_failure_reasons_come_from_the_queue(
        engine: Engine, make_campaign: CampaignFactory) -> None:
    _approved(engine, make_campaign)
    clock = VirtualClock(LAST_CALL + timedelta(minutes=3))           # three minutes late
    worker, _ = _worker(engine, clock, Scripted(clock, [PermanentError("refused: duplicate")]))
    worker.tick()
    r = campaign_report(engine, "testcamp", clock.now())
    assert r.counts == {"expired": 2, "failed": 1, "published": 2}
    published = [row for row in r.rows if row.state == S.PUBLISHED]
    assert [row.late_seconds for row in published] == [180.0, 180.0]
    assert (r.on_time, r.late, r.latest_seconds) == (0, 2, 180.0)
    failed = next(row for row in r.rows if row.state == S.FAILED)
    assert failed.reason is not None and "refused: duplicate" in failed.reason
    expired = [row for row in r.rows if row.state == S.EXPIRED]
    assert len(expired) == 2
    assert all((row.reason or "").startswith("not sent by its not_after") for row in expired)
    # dry-run posts have no counts: none read, none shown as best
    assert r.best == [] and {row.likes for row in r.rows} == {None}
    # the best per platform and language is the highest likes + reposts + replies
    with session(engine) as s:
        ids = [p.id for p in s.exec(select(Post).where(Post.state == S.PUBLISHED)).all()]
        s.add(PostEngagement(post_id=ids[0], likes=1, reposts=1, replies=0, fetched_at=clock.now()))
        s.add(PostEngagement(post_id=ids[1], likes=0, reposts=0, replies=5, fetched_at=clock.now()))
    r = campaign_report(engine, "testcamp", clock.now())
    assert [(b.platform, b.language, b.row.id) for b in r.best] == [("dryrun", None, ids[1])]
    data = json.loads(render_json(r))
    assert data["counts"] == r.counts and len(data["rows"]) == 5
    html = render_html(r)
    assert "Which post did best" in html and "3m late" in html


def test_report_command(cli: Any, make_campaign: CampaignFactory, tmp_path: Path) -> None:
    folder = make_campaign("""
        [campaign]
        slug = "now"
        title = "Now <b>bold</b>"
        deadline = 2099-01-20T12:00:00Z
        timezone = "UTC"

        [accounts.org]
        platform = "dryrun"

        [[posts]]
        key = "one"
        text = "hello <script>"
        accounts = ["org"]
        schedule = { at = "T-2d" }
    """)
    assert cli("plan", str(folder)).code == 0
    r = cli("report", "now")
    assert r.code == 0 and "1 draft" in r.out and "no engagement counts yet" in r.out
    r = cli("report", "now", "--format", "json")
    assert r.code == 0 and json.loads(r.out)["counts"] == {"draft": 1}
    r = cli("report", "now", "--format", "html", "-o", str(tmp_path / "r.html"))
    page = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert r.code == 0 and "hello &lt;script&gt;" in page and "<script>" not in page
    assert cli("report", "now", "--format", "pdf").code == 2
    assert cli("report", "nosuch").code == 2
    r = cli("engagement", "fetch")
    assert r.code == 0 and "no published post to read counts of yet" in r.out
