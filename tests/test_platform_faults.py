"""Platform faults seen from the scheduler, where more than one account is involved:
a campaign with one post on each of X, Mastodon and Bluesky, a real `Worker` whose
adapters point at one fake platform server (see `tests/platform_world.py`).

The error mapping of each fault on each platform is the table in
`tests/error_table.py`, run by `test_publisher_contract.py`; here: all three go out,
a fault on one holds up none of the others, X's duplicate refusal of a tweet already
out, and a missing credential.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import CampaignFactory
from tests.error_table import inject
from tests.fakeplatform import x as fx
from tests.platform_world import PLATFORMS, TEXT, S, world

ALL = list(PLATFORMS)


def test_all_three_publish_without_faults(make_campaign: CampaignFactory,
                                          tmp_path: Path) -> None:
    with world(make_campaign, tmp_path, ALL) as w:
        w.ticks(3)
        for p in PLATFORMS.values():
            w.published_once(p)
            assert w.creates(p) == 1
        w.assert_no_secrets()


@pytest.mark.parametrize(("name", "fault"), [("x", "hang before"), ("mastodon", "401"),
                                             ("bluesky", "429")])
def test_a_fault_on_one_platform_holds_up_none_of_the_others(
        name: str, fault: str, make_campaign: CampaignFactory, tmp_path: Path) -> None:
    p = PLATFORMS[name]
    with world(make_campaign, tmp_path, ALL) as w:
        inject(w.fake, p, fault)
        w.ticks(1)
        assert w.post(p.account).state != S.PUBLISHED
        w.others_published(p, ALL)
        w.assert_no_secrets()


def test_x_duplicate_of_a_tweet_already_out_is_published(make_campaign: CampaignFactory,
                                                         tmp_path: Path) -> None:
    """An earlier attempt's tweet is out (its answer was lost and the lookup lagged):
    X refuses the retry as duplicate content, and the adapter finds the first one."""
    p = PLATFORMS["x"]
    with world(make_campaign, tmp_path, ["x"]) as w:
        tweet = fx.add_tweet(w.fake, TEXT)
        w.ticks(3)
        post = w.post(p.account)
        assert post.state == S.PUBLISHED, post.last_error
        assert post.remote_id == tweet["id"]
        assert p.copies(w.fake, TEXT) == [tweet["id"]]
        assert w.creates(p) == 1
        w.assert_no_secrets()


def test_a_missing_credential_holds_up_only_its_own_account(make_campaign: CampaignFactory,
                                                            tmp_path: Path) -> None:
    """An account whose credential is missing from the environment cannot post, but the
    tick goes on: the other accounts' posts go out, and its own post is not left in
    `sending` (where it would be reaped, looked up and sent to review)."""
    with world(make_campaign, tmp_path, ALL,
               env_without="TMINUS_ORG_BSKY_APP_PASSWORD") as w:
        w.worker.tick()
        w.others_published(PLATFORMS["bluesky"], ALL)
        post, acc = w.post("org_bsky"), w.account("org_bsky")
        assert post.state == S.QUEUED
        assert acc.paused_reason and "TMINUS_ORG_BSKY_APP_PASSWORD" in acc.paused_reason
        w.assert_no_secrets()
