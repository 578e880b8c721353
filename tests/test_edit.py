"""A person's edit of one post: checked like a campaign post, back to draft with the
difference in its event, and kept by a later re-plan, which reports a conflict when
the campaign file changed the post too. On SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import col, select

from content.errors import FieldError, TminusError
from scheduler.db import session
from scheduler.models import Event, Post, PostState
from scheduler.planner import plan
from scheduler.service import approve
from scheduler.service.edits import edit_post, edit_sheet, settle_conflict
from scheduler.transitions import transition
from tests.conftest import CampaignFactory, simple_toml

S = PostState
DEADLINE = datetime(2099, 1, 20, 17, 0, tzinfo=UTC)
START = DEADLINE - timedelta(days=4)
LATER = START + timedelta(minutes=5)
POSTS = """
    [[posts]]
    key = "call"
    text = "Call {{ call_line }} today. {{ hashtags }}"
    accounts = ["org"]
    schedule = { at = "T-1d" }

    [[posts]]
    key = "other"
    text = "Write to your senator. {{ hashtags }}"
    accounts = ["org"]
    schedule = { at = "T-2d" }
"""


@pytest.fixture
def engine(any_engine: Engine) -> Engine:
    return any_engine


def _post(engine: Engine, key: str = "call") -> Post:
    with session(engine) as s:
        p = s.exec(select(Post).where(Post.post_key == key)).one()
        return p


def _events(engine: Engine, post_id: int) -> list[Event]:
    with session(engine) as s:
        return list(s.exec(select(Event).where(Event.post_id == post_id).order_by(col(Event.id))).all())


def _campaign(make_campaign: CampaignFactory, posts: str = POSTS) -> Path:
    return make_campaign(simple_toml(posts=posts), name="camp")


def test_an_edit_of_a_queued_post_returns_it_to_draft_with_the_difference(
        engine: Engine, make_campaign: CampaignFactory) -> None:
    plan(engine, _campaign(make_campaign), now=START)
    approve(engine, campaign="testcamp", post_ids=[], by="ana", now=START)
    p = _post(engine)
    assert p.state == S.QUEUED and p.id is not None
    r = edit_post(engine, p.id, "Call 202-555-0100 now! #TestTag", by="Ben Ode", now=LATER)
    assert (r.was, r.state) == (S.QUEUED, S.DRAFT)
    assert r.diff == "@@ -1 +1 @@\n-Call 202-555-0100 today. #TestTag\n+Call 202-555-0100 now! #TestTag"
    assert (r.length, r.limit) == (31, 280)
    after = _post(engine)
    assert after.state == S.DRAFT and after.approved_hash is None
    assert after.text == "Call 202-555-0100 now! #TestTag" and after.edited_by == "Ben Ode"
    last = _events(engine, p.id)[-1]
    assert (last.from_state, last.to_state, last.actor) == (S.QUEUED, S.DRAFT, "Ben Ode")
    assert last.reason.startswith("edited by Ben Ode; approve it again\n@@ -1 +1 @@\n-Call")
    # it needs approval again, and then goes out with the edited text
    approve(engine, campaign="testcamp", post_ids=[p.id], by="ana", now=LATER)
    again = _post(engine)
    assert again.approved is not None and again.approved["text"] == again.text


def test_an_edit_of_a_draft_is_recorded_and_it_stays_a_draft(
        engine: Engine, make_campaign: CampaignFactory) -> None:
    plan(engine, _campaign(make_campaign), now=START)
    p = _post(engine)
    assert p.id is not None
    r = edit_post(engine, p.id, "Call today.\r\nReally. #TestTag", by="Ben", now=LATER)
    assert r.was == S.DRAFT and _post(engine).text == "Call today.\nReally. #TestTag"
    last = _events(engine, p.id)[-1]
    assert (last.from_state, last.to_state) == (S.DRAFT, S.DRAFT)
    assert "+Call today.\n+Really. #TestTag" in last.reason


def test_an_edit_is_checked_like_a_campaign_post(engine: Engine, make_campaign: CampaignFactory) -> None:
    plan(engine, _campaign(make_campaign), now=START)
    p, other = _post(engine), _post(engine, "other")
    assert p.id is not None and other.id is not None
    with pytest.raises(FieldError, match="--text is 281 weighted chars, over dryrun's limit of 280"):
        edit_post(engine, p.id, "x" * 281, by="Ben", now=LATER)
    with pytest.raises(TminusError, match=f"the same text is already post {other.id}"):
        edit_post(engine, p.id, "write to your  SENATOR. #testtag", by="Ben", now=LATER)
    with pytest.raises(FieldError, match="--text is empty"):
        edit_post(engine, p.id, " \n ", by="Ben", now=LATER)
    with pytest.raises(FieldError, match="is the post's text as it is"):
        edit_post(engine, p.id, p.text, by="Ben", now=LATER)
    with pytest.raises(FieldError, match="--by needs the name"):
        edit_post(engine, p.id, "new", by=" ", now=LATER)
    with pytest.raises(TminusError, match="no post 999"):
        edit_post(engine, 999, "new", by="Ben", now=LATER)
    with session(engine) as s:
        row = s.get(Post, p.id)
        assert row is not None
        transition(s, row, S.CANCELED, "test", LATER, "test")
    with pytest.raises(TminusError, match="is canceled; only a draft or queued post can be edited"):
        edit_post(engine, p.id, "new", by="Ben", now=LATER)
    r = edit_post(engine, other.id, "No hashtag here", by="Ben", now=LATER)
    assert r.state == S.DRAFT
    assert _post(engine, "other").warnings == ["none of the campaign's hashtags is in this post"]
    assert [e.to_state for e in _events(engine, p.id)] == [S.DRAFT, S.CANCELED]  # nothing written


def test_a_replan_keeps_an_edit_and_reports_a_conflict_when_the_file_changed_it(
        engine: Engine, make_campaign: CampaignFactory) -> None:
    folder = _campaign(make_campaign)
    plan(engine, folder, now=START)
    approve(engine, campaign="testcamp", post_ids=[], by="ana", now=START)
    p = _post(engine)
    assert p.id is not None
    edit_post(engine, p.id, "Call 202-555-0100 now! #TestTag", by="Ben", now=LATER)
    r = plan(engine, folder, now=LATER)                    # the file did not change that post
    assert r.conflicts == [] and r.unchanged == 2
    assert _post(engine).text == "Call 202-555-0100 now! #TestTag"

    (folder / "campaign.toml").write_text(simple_toml(posts=POSTS.replace("today", "tonight")))
    r = plan(engine, folder, now=LATER)
    assert r.conflicts == [(p.id, "@@ -1 +1 @@\n-Call 202-555-0100 now! #TestTag\n"
                                  "+Call 202-555-0100 tonight. #TestTag")]
    after = _post(engine)
    assert after.text == "Call 202-555-0100 now! #TestTag"     # the edit stands
    assert after.plan_conflict and after.planned_text == "Call 202-555-0100 tonight. #TestTag"
    assert "changed this post after Ben's edit" in _events(engine, p.id)[-1].reason
    assert plan(engine, folder, now=LATER).conflicts == r.conflicts   # shown until settled
    sheet = edit_sheet(engine, p.id)
    assert sheet.conflict and sheet.planned_text == after.planned_text

    settle_conflict(engine, p.id, keep=True, by="Ben", now=LATER)
    assert not _post(engine).plan_conflict and plan(engine, folder, now=LATER).conflicts == []
    assert _post(engine).text == "Call 202-555-0100 now! #TestTag"


def test_taking_the_files_text_drops_the_edit(engine: Engine, make_campaign: CampaignFactory) -> None:
    folder = _campaign(make_campaign)
    plan(engine, folder, now=START)
    p = _post(engine)
    assert p.id is not None
    edit_post(engine, p.id, "Call now! #TestTag", by="Ben", now=LATER)
    (folder / "campaign.toml").write_text(simple_toml(posts=POSTS.replace("today", "tonight")))
    plan(engine, folder, now=LATER)
    r = settle_conflict(engine, p.id, keep=False, by="Cy", now=LATER)
    assert r.diff == "@@ -1 +1 @@\n-Call now! #TestTag\n+Call 202-555-0100 tonight. #TestTag"
    after = _post(engine)
    assert after.text == "Call 202-555-0100 tonight. #TestTag" and after.planned_text is None
    assert not after.plan_conflict
    # from now on a re-plan updates it as any post
    (folder / "campaign.toml").write_text(simple_toml(posts=POSTS.replace("today", "at noon")))
    assert plan(engine, folder, now=LATER).updated == 1
    assert _post(engine).text == "Call 202-555-0100 at noon. #TestTag"
    with pytest.raises(TminusError, match="no edit standing"):
        settle_conflict(engine, p.id, keep=True, by="Cy", now=LATER)


def test_a_replan_that_moves_an_edited_queued_post_sends_it_back_to_draft_keeping_the_edit(
        engine: Engine, make_campaign: CampaignFactory) -> None:
    folder = _campaign(make_campaign)
    plan(engine, folder, now=START)
    p = _post(engine)
    assert p.id is not None
    edit_post(engine, p.id, "Call now! #TestTag", by="Ben", now=LATER)
    approve(engine, campaign="testcamp", post_ids=[p.id], by="ana", now=LATER)
    moved = POSTS.replace('schedule = { at = "T-1d" }', 'schedule = { at = "T-1d" }\nexpires = "30m"')
    (folder / "campaign.toml").write_text(simple_toml(posts=moved))
    r = plan(engine, folder, now=LATER)
    [(pid, what)] = r.returned_to_draft
    assert pid == p.id and r.conflicts == []
    # what moved, not the text; in the campaign's timezone, as a person reads it
    assert what.startswith("not_after: ") and what.endswith(" EST") and "UTC" not in what
    after = _post(engine)
    assert after.state == S.DRAFT and after.text == "Call now! #TestTag"
    assert after.not_after == DEADLINE - timedelta(days=1) + timedelta(minutes=30)
