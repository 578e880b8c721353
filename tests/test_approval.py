"""What was approved is what goes out: the approval covers the text, every option, the
reply parent, the bytes and alt text of every image and the account; right before the
request the daemon checks it again, and anything that differs holds the post back to
draft with the difference as the event's reason. On SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import col, select

from content.errors import TminusError
from jobs.adapters.dryrun import DryRunPublisher
from jobs.outgoing import Identity, Outgoing, Receipt
from scheduler.approval import differences, manifest_of_row
from scheduler.clock import VirtualClock
from scheduler.daemon import Worker
from scheduler.db import session
from scheduler.models import Account, Event, Post, PostState
from scheduler.planner import plan
from scheduler.publishers import Publishers
from scheduler.service import approve
from scheduler.settings import Settings
from tests.conftest import CampaignFactory, simple_toml

S = PostState
DEADLINE = datetime(2099, 1, 20, 17, 0, tzinfo=UTC)
START = DEADLINE - timedelta(days=4)
# a PNG's signature and the start of its header: enough bytes to be told apart
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(64))
OTHER_PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(64, 128))

POSTS = """
    [[posts]]
    key = "poster"
    text = "See the poster. {{ hashtags }}"
    accounts = ["org"]
    schedule = { at = "T-1d" }
    media = [{ path = "poster.png", alt = "A poster: vote yes on Prop 5" }]
"""


@pytest.fixture
def engine(any_engine: Engine) -> Engine:
    return any_engine


class Recording:
    """The dry-run adapter, remembering every post handed to it."""

    platform = "dryrun"

    def __init__(self, clock: VirtualClock) -> None:
        self.inner = DryRunPublisher(None, now=clock.now)
        self.published: list[Outgoing] = []

    def publish(self, post: Outgoing) -> Receipt:
        self.published.append(post)
        return self.inner.publish(post)

    def find(self, post: Outgoing, since: datetime) -> Receipt | None:
        return None

    def check(self) -> Identity:
        return self.inner.check()


def _approved(engine: Engine, make_campaign: CampaignFactory) -> tuple[Path, Post]:
    folder = make_campaign(simple_toml(posts=POSTS))
    (folder / "poster.png").write_bytes(PNG)
    plan(engine, folder, now=START)
    approve(engine, campaign="testcamp", post_ids=[], by="ana", now=START)
    return folder, _post(engine)


def _post(engine: Engine) -> Post:
    with session(engine) as s:
        post = s.exec(select(Post)).one()
        s.expunge(post)
        return post


def _send(engine: Engine, post: Post) -> Recording:
    clock = VirtualClock(post.due_at)
    pub = Recording(clock)
    cfg = Settings(dry_run=True)
    pubs = Publishers(engine, cfg, now=clock.now, dry_run=True)
    pubs.dryrun = pub  # type: ignore[assignment]
    Worker(engine, cfg, clock, pubs, owner="test").tick()
    return pub


def _last_reason(engine: Engine, post_id: int | None) -> str:
    with session(engine) as s:
        return s.exec(select(Event.reason).where(Event.post_id == post_id)
                      .order_by(col(Event.id).desc())).first() or ""


def _held_back(engine: Engine, post: Post, pub: Recording, *expected: str) -> None:
    assert pub.published == []                  # nothing handed over, nothing uploaded
    after = _post(engine)
    assert after.state == S.DRAFT and after.approved is None and after.approved_hash is None
    assert after.attempt == post.attempt        # never attempted
    reason = _last_reason(engine, post.id)
    assert reason.startswith("not sent: what would go out is not what was approved")
    for part in expected:
        assert part in reason


def test_what_was_approved_goes_out_with_the_checked_bytes(
        engine: Engine, make_campaign: CampaignFactory) -> None:
    _, post = _approved(engine, make_campaign)
    assert post.approved is not None
    assert post.approved["media"][0]["alt"] == "A poster: vote yes on Prop 5"
    pub = _send(engine, post)
    [sent] = pub.published
    assert [m.data for m in sent.media] == [PNG]    # the bytes hashed are the bytes uploaded
    assert _post(engine).state == S.PUBLISHED


def test_a_replaced_image_is_held_back_before_anything_is_uploaded(
        engine: Engine, make_campaign: CampaignFactory) -> None:
    folder, post = _approved(engine, make_campaign)
    (folder / "poster.png").write_bytes(OTHER_PNG)
    _held_back(engine, post, _send(engine, post), "image 1 (poster.png): the file's bytes changed")


def test_a_missing_image_is_held_back(engine: Engine, make_campaign: CampaignFactory) -> None:
    folder, post = _approved(engine, make_campaign)
    (folder / "poster.png").unlink()
    _held_back(engine, post, _send(engine, post), "missing or cannot be read")


def test_text_changed_in_the_database_keeping_the_stored_hash_is_not_sent(
        engine: Engine, make_campaign: CampaignFactory) -> None:
    _, post = _approved(engine, make_campaign)
    with engine.begin() as conn:   # text_hash and approved_hash untouched
        conn.execute(sa.text("UPDATE post SET text = 'Vote NO on Prop 5' WHERE id = :id"),
                     {"id": post.id})
    _held_back(engine, post, _send(engine, post), "text changed", "+Vote NO on Prop 5")


@pytest.mark.parametrize(("key", "value", "expected"), [
    ("visibility", "direct", "visibility: None → 'direct'"),
    ("language", "fr", "language: None → 'fr'"),
    ("content_warning", "spoilers", "content warning: None → 'spoilers'"),
])
def test_a_changed_option_is_held_back(engine: Engine, make_campaign: CampaignFactory,
                                       key: str, value: str, expected: str) -> None:
    _, post = _approved(engine, make_campaign)
    with session(engine) as s:
        p = s.get(Post, post.id)
        assert p is not None
        p.options = {**p.options, key: value}
        s.add(p)
    _held_back(engine, post, _send(engine, post), expected)


def test_changed_alt_text_is_held_back(engine: Engine, make_campaign: CampaignFactory) -> None:
    _, post = _approved(engine, make_campaign)
    with session(engine) as s:
        p = s.get(Post, post.id)
        assert p is not None
        p.options = {**p.options, "media": [{**p.options["media"][0], "alt": "A cat"}]}
        s.add(p)
    _held_back(engine, post, _send(engine, post),
               "alt text: 'A poster: vote yes on Prop 5' → 'A cat'")


def test_a_changed_reply_parent_is_a_difference(engine: Engine,
                                                make_campaign: CampaignFactory) -> None:
    # (a reply waits until its parent is published, so this is the check itself)
    _, post = _approved(engine, make_campaign)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE post SET parent_id = id WHERE id = :id"), {"id": post.id})
    with session(engine) as s:
        p, acc = s.get(Post, post.id), s.get(Account, post.account_id)
        assert p is not None and acc is not None
        now = manifest_of_row(p.text, p.options, p.parent_id, acc)
        assert differences(p.approved, p.approved_hash, now) == [f"reply to: None → {post.id}"]


def test_other_credentials_for_the_account_are_held_back(
        engine: Engine, make_campaign: CampaignFactory) -> None:
    _, post = _approved(engine, make_campaign)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE account SET credentials = 'EVIL'"))
    _held_back(engine, post, _send(engine, post), "credentials prefix: '' → 'EVIL'")


def test_a_handle_learned_after_approval_is_no_difference_but_a_changed_one_is(
        engine: Engine, make_campaign: CampaignFactory) -> None:
    _, post = _approved(engine, make_campaign)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE account SET handle = '@org'"))
    approve_again = _post(engine)
    assert approve_again.approved is not None
    assert approve_again.approved["account"]["handle"] is None
    assert len(_send(engine, post).published) == 1


def test_a_changed_handle_is_held_back(engine: Engine, make_campaign: CampaignFactory) -> None:
    folder = make_campaign(simple_toml(posts=POSTS))
    (folder / "poster.png").write_bytes(PNG)
    plan(engine, folder, now=START)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE account SET handle = '@org'"))
    approve(engine, campaign="testcamp", post_ids=[], by="ana", now=START)
    post = _post(engine)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE account SET handle = '@someone_else'"))
    _held_back(engine, post, _send(engine, post), "account handle: '@org' → '@someone_else'")


def test_a_tampered_approval_record_is_held_back(
        engine: Engine, make_campaign: CampaignFactory) -> None:
    _, post = _approved(engine, make_campaign)
    with session(engine) as s:
        p = s.get(Post, post.id)
        assert p is not None and p.approved is not None
        p.approved = {**p.approved, "text": "forged"}
        p.text = "forged"
        s.add(p)
    _held_back(engine, post, _send(engine, post), "approval record is missing")


# -- an account belongs to the campaign that declared it; a slug to its folder ----------

OTHER = """
    [accounts.org]
    platform = "dryrun"
    credentials = "OTHER"
"""


def test_another_campaign_cannot_take_an_account_over(
        engine: Engine, make_campaign: CampaignFactory) -> None:
    first = make_campaign(simple_toml())
    plan(engine, first, now=START)
    thief = make_campaign(simple_toml(slug="other", accounts=OTHER, posts=POSTS.replace(
        'media = [{ path = "poster.png", alt = "A poster: vote yes on Prop 5" }]', "")))
    before = _table(engine)
    with pytest.raises(TminusError) as e:
        plan(engine, thief, now=START)
    message = str(e.value)
    assert str(thief / "campaign.toml") in message and str(first.resolve() / "campaign.toml") in message
    assert "credentials = ''" in message and "'OTHER'" in message
    assert _table(engine) == before                              # nothing written
    with session(engine) as s:
        assert s.exec(select(Account.credentials).where(Account.name == "org")).one() == ""


def test_an_account_declared_with_another_budget_is_named_as_the_file_writes_it(
        engine: Engine, make_campaign: CampaignFactory) -> None:
    plan(engine, make_campaign(simple_toml()), now=START)
    budgeted = OTHER.replace('credentials = "OTHER"', 'budget = { posts = 50, per = "1h" }')
    other = make_campaign(simple_toml(slug="other", accounts=budgeted, posts=POSTS.replace(
        'media = [{ path = "poster.png", alt = "A poster: vote yes on Prop 5" }]', "")))
    with pytest.raises(TminusError) as e:
        plan(engine, other, now=START)
    assert ('budget = none (the tier\'s) (not { posts = 50, per = "3600s" })' in str(e.value)
            and "None" not in str(e.value)), str(e.value)


def test_another_campaign_may_share_an_account_declared_alike(
        engine: Engine, make_campaign: CampaignFactory) -> None:
    plan(engine, make_campaign(simple_toml()), now=START)
    report = plan(engine, make_campaign(simple_toml(slug="other")), now=START)
    assert report.created == 5


def test_a_slug_planned_from_another_folder_needs_replace(
        engine: Engine, make_campaign: CampaignFactory) -> None:
    first = make_campaign(simple_toml())
    plan(engine, first, now=START)
    moved = make_campaign(simple_toml())
    before = _table(engine)
    with pytest.raises(TminusError, match="already planned from .*--replace") as e:
        plan(engine, moved, now=START)
    assert str(first.resolve() / "campaign.toml") in str(e.value)
    assert str(moved / "campaign.toml") in str(e.value)
    assert _table(engine) == before
    report = plan(engine, moved, now=START, replace=True)
    assert (report.created, report.unchanged, report.canceled) == (0, 5, 0)


def _table(engine: Engine) -> list[tuple[object, ...]]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.text(
            "SELECT p.id, p.state, p.text, a.name, a.credentials, c.folder FROM post p "
            "JOIN account a ON a.id = p.account_id JOIN campaign c ON c.id = p.campaign_id "
            "ORDER BY p.id"))]
