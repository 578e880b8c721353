"""The use cases behind the dashboard's pages, on SQLite and PostgreSQL: the overview
and what needs a person, the timeline's days, cards and filters, the approval digest,
the audit, people and logins."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import col, select

from content.entities import segments
from content.errors import TminusError
from scheduler.db import session
from scheduler.models import Post, PostState
from scheduler.planner import plan
from scheduler.service import approve
from scheduler.service.approvals import Changed, approval_sheet
from scheduler.service.edits import edit_post
from scheduler.service.overview import campaign_audit, campaign_overview, overview
from scheduler.service.pauses import Target, pause
from scheduler.service.people import (
    LoginRefused,
    add_person,
    log_in,
    log_out,
    session_person,
    web_secret,
)
from scheduler.service.timeline import Filters, post_card, timeline
from scheduler.transitions import transition
from tests.conftest import SIMPLE_ACCOUNTS, SIMPLE_POSTS, CampaignFactory, simple_toml

S = PostState
DEADLINE = datetime(2099, 1, 20, 17, 0, tzinfo=UTC)
NOW = DEADLINE - timedelta(days=4)
MASTODON = """
    [accounts.masto]
    platform = "mastodon"
    credentials = "MASTO"
    language = "es"
"""
THREAD = """
    [[posts]]
    key = "thread"
    text = "Primero: llama al 202-555-0100 https://example.org/llama #TestTag @ana@example.social"
    thread = ["Segundo.", "Tercero."]
    accounts = ["masto"]
    schedule = { at = "T-2d" }
    content_warning = "política"
"""


@pytest.fixture
def engine(any_engine: Engine) -> Engine:
    return any_engine


def _planned(engine: Engine, make_campaign: CampaignFactory, thread: bool = False) -> Path:
    folder = make_campaign(simple_toml(accounts=SIMPLE_ACCOUNTS + (MASTODON if thread else ""),
                                       posts=SIMPLE_POSTS + (THREAD if thread else "")))
    plan(engine, folder, now=NOW)
    return folder


def _ids(engine: Engine, state: PostState = S.DRAFT) -> list[int]:
    with session(engine) as s:
        return [p.id for p in s.exec(select(Post).where(Post.state == state)
                                     .order_by(col(Post.due_at), col(Post.id))).all() if p.id]


def test_the_overview_counts_and_lists_what_needs_a_person(
        engine: Engine, make_campaign: CampaignFactory) -> None:
    _planned(engine, make_campaign)
    ids = _ids(engine)
    approve(engine, campaign="testcamp", post_ids=ids[:2], by="Ana", now=NOW)
    with session(engine) as s:
        failed = s.get(Post, ids[0])
        review = s.get(Post, ids[1])
        assert failed is not None and review is not None
        transition(s, failed, S.SENDING, "claim", NOW, "d")
        transition(s, failed, S.FAILED, "refused", NOW, "d", last_error="403 duplicate content")
        transition(s, review, S.SENDING, "claim", NOW, "d")
        transition(s, review, S.UNKNOWN, "?", NOW, "d")
        transition(s, review, S.REVIEW, "?", NOW, "d", last_error="could not tell: timeout")
    # the day's daily (09:00 New York) and the last calls (T-2h) are drafts due within
    # six hours of this moment
    at = DEADLINE - timedelta(hours=5)
    pause(engine, Target(account="org"), reason="password reset", by="Ana", now=at)
    o = campaign_overview(engine, "testcamp", now=at)
    assert o.counts == {S.DRAFT: 3, S.FAILED: 1, S.REVIEW: 1} and o.total == 5
    assert o.head.time_left == "5 hours" and not o.head.over
    kinds = [(n.kind, n.post_id) for n in o.needs]
    assert kinds[:2] == [("review", ids[1]), ("failed", ids[0])]
    assert [k for k, _ in kinds[2:]] == ["due soon"] * 3
    assert o.needs[1].detail == "403 duplicate content"
    assert [n.detail for n in o.needs[2:]] == ["not approved; due in 2h"] + ["not approved; due in 3h"] * 2
    assert [p.what for p in o.pauses] == ["account org"] and o.paused
    assert o.activity[0].message == "paused account org: password reset"
    assert o.daemons == []
    everything = overview(engine, now=at)
    assert [(c.head.slug, c.needs, c.paused) for c in everything.campaigns] == [("testcamp", 5, True)]


def test_the_timeline_groups_by_local_day_with_cards_that_read_like_the_platform(
        engine: Engine, make_campaign: CampaignFactory) -> None:
    _planned(engine, make_campaign, thread=True)
    t = timeline(engine, "testcamp", now=NOW)
    assert [d.label for d in t.days] == ["Sunday 18 January", "Monday 19 January",
                                         "Tuesday 20 January"]
    assert [c.time_local for c in t.days[0].cards] == ["09:00", "12:00"]   # New York time
    thread = t.days[0].cards[1]
    assert thread.platform == "mastodon" and thread.content_warning == "política"
    assert [r.text for r in thread.replies] == ["Segundo.", "Tercero."]
    assert thread.language == "es" and thread.time_local == "12:00" and thread.t_minus == "T-2d"
    kinds = [(s.kind, s.text) for s in thread.segments if s.kind != "text"]
    assert kinds == [("link", "https://example.org/llama"), ("tag", "#TestTag"),
                     ("mention", "@ana@example.social")]
    assert "".join(s.text for s in thread.segments) == thread.text
    assert (thread.length, thread.limit) == (len(thread.text) - len("https://example.org/llama") + 23
                                             - len("@example.social") + len("política"), 500)
    assert t.total == 8 and t.platforms == ["dryrun", "mastodon"] and t.languages == ["es"]
    only = timeline(engine, "testcamp", now=NOW, filters=Filters(language="es"))
    assert only.total == 3
    assert timeline(engine, "testcamp", now=NOW, filters=Filters(platform="mastodon")).total == 3
    assert timeline(engine, "testcamp", now=NOW, filters=Filters(account="partner")).total == 1
    assert timeline(engine, "testcamp", now=NOW, filters=Filters(state="queued")).total == 0
    with pytest.raises(TminusError, match="unknown state bogus"):
        timeline(engine, "testcamp", now=NOW, filters=Filters(state="bogus"))
    capped = timeline(engine, "testcamp", now=NOW, limit=2)
    assert capped.shown == 2 and capped.total == 8
    assert [r.text for r in post_card(engine, thread.id).replies] == ["Segundo.", "Tercero."]


def test_the_digest_covers_everything_that_goes_out(
        engine: Engine, make_campaign: CampaignFactory) -> None:
    folder = _planned(engine, make_campaign)
    ids = _ids(engine)
    sheet = approval_sheet(engine, "testcamp", post_ids=ids[:2], now=NOW)
    assert [c.id for c in sheet.cards] == ids[:2] and sheet.drafts == 5 and not sheet.more
    assert approval_sheet(engine, "testcamp", post_ids=list(reversed(ids[:2])), now=NOW).digest == sheet.digest
    assert approval_sheet(engine, "testcamp", post_ids=ids[:3], now=NOW).digest != sheet.digest
    # a change of the time or options (here: expires) changes it too, not only the text
    toml = (folder / "campaign.toml").read_text()
    (folder / "campaign.toml").write_text(toml.replace('schedule = { at = "T-2h" }',
                                                       'schedule = { at = "T-2h" }\nexpires = "30m"'))
    plan(engine, folder, now=NOW)
    last_calls = [c.id for c in approval_sheet(engine, "testcamp", post_ids=None, now=NOW).cards][-2:]
    before = approval_sheet(engine, "testcamp", post_ids=last_calls, now=NOW).digest
    assert before != sheet.digest
    with pytest.raises(Changed, match="nothing was approved"):
        approve(engine, campaign="testcamp", post_ids=ids[:2], by="Ana", now=NOW, expect=before)
    edit_post(engine, ids[1], "New words #TestTag", by="Ed", now=NOW)
    with pytest.raises(Changed):
        approve(engine, campaign="testcamp", post_ids=ids[:2], by="Ana", now=NOW, expect=sheet.digest)
    assert _ids(engine, S.QUEUED) == []
    fresh = approval_sheet(engine, "testcamp", post_ids=ids[:2], now=NOW).digest
    r = approve(engine, campaign="testcamp", post_ids=ids[:2], by="Ana", now=NOW, expect=fresh)
    assert r.approved == ids[:2]
    again = approval_sheet(engine, "testcamp", post_ids=ids[:3], now=NOW)
    assert again.not_drafts == ids[:2] and [c.id for c in again.cards] == [ids[2]]


def test_the_audit_merges_post_events_and_activity_newest_first(
        engine: Engine, make_campaign: CampaignFactory) -> None:
    _planned(engine, make_campaign)
    ids = _ids(engine)
    approve(engine, campaign="testcamp", post_ids=ids[:1], by="Ana", now=NOW + timedelta(minutes=1))
    pause(engine, Target(everything=True), reason="hold", by="Ben", now=NOW + timedelta(minutes=2))
    a = campaign_audit(engine, "testcamp", now=NOW)
    assert [(e.post_id, e.actor) for e in a.entries[:2]] == [(None, "Ben"), (ids[0], "Ana")]
    assert a.entries[1].reason == "approved by Ana" and a.entries[1].to_state == S.QUEUED
    assert len(a.entries) == 5 + 1 + 1 and not a.more
    assert campaign_audit(engine, "testcamp", now=NOW, limit=3).more


def test_logins_sessions_and_the_throttle_on_both_databases(engine: Engine) -> None:
    add_person(engine, name="Ana Ruiz", role="approver", password="long enough 1", by="t", now=NOW)
    done = log_in(engine, name="ANA RUIZ", password="long enough 1", address="10.0.0.1", now=NOW)
    assert done.person.name == "Ana Ruiz" and done.expires_at == NOW + timedelta(days=7)
    who = session_person(engine, done.token, now=NOW)
    assert who is not None and who.role == "approver"
    assert session_person(engine, done.token + "x", now=NOW) is None
    log_out(engine, done.token)
    assert session_person(engine, done.token, now=NOW) is None
    for _ in range(5):
        with pytest.raises(LoginRefused, match="wrong name or password"):
            log_in(engine, name="Ana Ruiz", password="nope", address="10.0.0.2", now=NOW)
    with pytest.raises(LoginRefused, match="too many failed logins"):
        log_in(engine, name="Ana Ruiz", password="long enough 1", address="10.0.0.3", now=NOW)
    later = NOW + timedelta(minutes=16)
    assert log_in(engine, name="Ana Ruiz", password="long enough 1", address="10.0.0.3", now=later)
    with pytest.raises(TminusError, match="already exists"):
        add_person(engine, name="ana ruiz", role="viewer", password="long enough 1", by="t", now=NOW)
    secret = web_secret(engine, None)
    assert len(secret) >= 48 and web_secret(engine, None) == secret     # made once, kept
    assert web_secret(engine, "x" * 40) == "x" * 40


def test_entities_are_cut_without_losing_a_character() -> None:
    text = "4 days. Call 202-456-1111 https://example.org/pardon #POTUSpardon @POTUS x@y.com #1"
    parts = segments(text, "x")
    assert "".join(p.text for p in parts) == text
    assert [(p.kind, p.text) for p in parts if p.kind != "text"] == [
        ("link", "https://example.org/pardon"), ("tag", "#POTUSpardon"), ("mention", "@POTUS")]
    # Mastodon links only URLs with a scheme; a bare domain gets https:// on a card
    assert [p.kind for p in segments("see example.org", "mastodon")] == ["text"]
    link = next(p for p in segments("see example.org/x", "x") if p.kind == "link")
    assert link.href == "https://example.org/x"
