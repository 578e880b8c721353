"""The platform registry: validated at import, one entry per platform, read by the
campaign checks, the length checks, the rate budgets and the credentials."""

from __future__ import annotations

import dataclasses
import importlib
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select

from bench.common import seed_queue
from content import rules
from content.campaign import load_campaign
from content.errors import CampaignErrors, TminusError
from content.platforms import (
    PLATFORMS,
    BlueskyCredentials,
    CredentialVar,
    Platform,
    RateBudget,
    RegistryError,
    Tier,
    UnknownPlatform,
    XCredentials,
    check_length,
    platform,
    validate,
)
from jobs.adapters.base import adapter_class
from scheduler.db import session
from scheduler.dispatch import budgets_of, claim
from scheduler.models import Post, PostState
from tests.conftest import CampaignFactory

X = PLATFORMS["x"]


def test_the_four_platforms_are_registered() -> None:
    assert list(PLATFORMS) == ["x", "mastodon", "bluesky", "dryrun"]
    for name, entry in PLATFORMS.items():
        assert entry.name == name
        assert entry.default_tier in entry.tier_names
        assert all(t.budgets for t in entry.tiers)
        assert entry.media.max_count == 4 and entry.media.source
        assert {"image/png", "image/jpeg", "image/gif", "image/webp"} <= entry.media.types
        assert entry.length.source and all(t.source for t in entry.tiers)


@pytest.mark.parametrize("broken", [
    dataclasses.replace(X, tiers=()),
    dataclasses.replace(X, tiers=(Tier("free", (), "no budget at all"),)),
    dataclasses.replace(X, default_tier="enterprise"),
    dataclasses.replace(X, options=frozenset({"polls"})),
    dataclasses.replace(X, adapter="jobs/adapters/x.py"),
])
def test_a_registry_without_a_budget_or_with_a_bad_entry_is_refused(broken: Platform) -> None:
    with pytest.raises(RegistryError, match="platform registry: 'x'"):
        validate([broken])


def test_a_platform_registered_twice_is_refused() -> None:
    with pytest.raises(RegistryError, match="twice"):
        validate([X, X])


def test_a_budget_is_never_zero() -> None:
    with pytest.raises(ValueError, match="posts ≥ 1"):
        RateBudget(0, timedelta(hours=1))
    with pytest.raises(ValueError, match="positive window"):
        RateBudget(5, timedelta(0))


def test_every_adapter_path_names_a_class_of_that_platform() -> None:
    for entry in PLATFORMS.values():
        module, _, name = entry.adapter.partition(":")
        cls = getattr(importlib.import_module(module), name)
        assert cls.platform == entry.name
        assert cls.CREDENTIALS is entry.credentials


def test_unknown_platform_is_a_user_error_and_a_value_error() -> None:
    with pytest.raises(UnknownPlatform, match="expected one of x, mastodon, bluesky, dryrun"):
        platform("myspace")
    assert issubclass(UnknownPlatform, TminusError) and issubclass(UnknownPlatform, ValueError)


def test_budgets_come_from_the_registry_and_never_run_out() -> None:
    assert budgets_of("x", "basic") == [RateBudget(100, timedelta(hours=24))]
    assert budgets_of("bluesky", "default") == list(PLATFORMS["bluesky"].tiers[0].budgets)
    assert budgets_of("dryrun", "default") == [RateBudget(1000, timedelta(minutes=1))]
    # a tier the registry no longer knows gets the platform's default tier
    assert budgets_of("x", "enterprise") == budgets_of("x", "free")
    custom = RateBudget(5, timedelta(minutes=10))
    assert budgets_of("x", "pro", custom) == [custom]
    with pytest.raises(UnknownPlatform):
        budgets_of("myspace", "default")


def test_check_length_uses_each_platforms_rule() -> None:
    text = "a" * 290
    assert [check_length(p, text).ok for p in PLATFORMS] == [False, True, True, False]
    assert check_length("dryrun", text).unit == X.length.unit == "weighted chars"
    # only Mastodon counts the content warning
    assert check_length("mastodon", "a" * 495, spoiler_text="b" * 6).length == 501
    assert check_length("bluesky", "a" * 295, spoiler_text="b" * 6).length == 295
    assert X.length.count is rules.x_post_length and X.length.accepts is rules.x_accepts


def test_each_length_rule_names_functions_and_limits_of_the_rules() -> None:
    """The registry names its rules' functions (imported on first use, not at import: the
    daemon never measures a post) and writes their limits out: both agree with
    `content.rules`."""
    limits = {"x": rules.X_LIMIT, "mastodon": rules.MASTODON_DEFAULT_LIMIT,
              "bluesky": rules.BLUESKY_LIMIT, "dryrun": rules.X_LIMIT}
    for name, entry in PLATFORMS.items():
        rule = entry.length
        assert rule.count is getattr(rules, rule.counter) and callable(rule.count)
        assert rule.accepts is getattr(rules, rule.acceptor) and callable(rule.accepts)
        assert rule.limit == limits[name], name


def test_credentials_are_typed_and_documented_by_their_fields() -> None:
    assert XCredentials.variables() == (
        CredentialVar("API_KEY", "the app's API key (OAuth 1.0a consumer key)", True),
        CredentialVar("API_SECRET", "the app's API key secret (consumer secret)", True),
        CredentialVar("ACCESS_TOKEN", "the account's access token (read and write)", True),
        CredentialVar("ACCESS_SECRET", "the account's access token secret", True),
        CredentialVar("API_BASE", "base URL replacing https://api.twitter.com "
                                  "(tests, a fake server)", False),
    )
    assert PLATFORMS["dryrun"].credentials.variables() == ()
    assert CredentialVar("HANDLE", "", True).variable("ORG") == "TMINUS_ORG_HANDLE"


def test_credentials_never_show_their_values() -> None:
    creds = BlueskyCredentials(handle="org.bsky.social", app_password="hunter2-secret")
    for shown in (repr(creds), str(creds), f"{creds!r}"):
        assert "hunter2" not in shown and "org.bsky" not in shown
    assert repr(creds) == "BlueskyCredentials(handle=<set>, app_password=<set>)"
    assert BlueskyCredentials(handle=" ", app_password="x").missing() == ["HANDLE"]


def test_campaign_platform_and_tier_are_checked_against_the_registry(
        make_campaign: CampaignFactory) -> None:
    def load(account: str) -> CampaignErrors:
        folder = make_campaign(f"""
            [campaign]
            slug = "reg"
            title = "Registry"
            deadline = 2030-01-20T12:00:00Z
            timezone = "UTC"
            hashtags = ["#R"]

            [accounts.a]
            {account}

            [[posts]]
            key = "p"
            text = "hi #R"
            accounts = ["a"]
            schedule = {{ at = "T-1h" }}
        """)
        with pytest.raises(CampaignErrors) as info:
            load_campaign(folder)
        return info.value

    assert "tier must be one of free, basic, pro" in str(load(
        'platform = "x"\ncredentials = "A"\ntier = "enterprise"'))
    assert "platform must be one of x, mastodon, bluesky, dryrun" in str(load('platform = "ig"'))
    assert "credentials must be" in str(load('platform = "bluesky"'))


def test_the_dry_runs_bound_holds_back_a_runaway_schedule(engine: Engine) -> None:
    """1,001 posts due at once on one dry-run account: 1,000 go, one waits for room."""
    due = datetime.now(UTC) - timedelta(seconds=1)
    seed_queue(engine, [due] * 1001, accounts=1)
    claimed = claim(engine, now=datetime.now(UTC), owner="t", lease=timedelta(minutes=5),
                    limit=2000)
    assert len(claimed) == 1000
    with session(engine) as s:
        [held] = s.exec(select(Post).where(Post.state == PostState.QUEUED)).all()
    assert "rate budget" in (held.last_error or "")


def test_an_adapter_path_naming_another_platforms_class_is_refused() -> None:
    wrong = dataclasses.replace(X, adapter="jobs.adapters.mastodon:MastodonPublisher")
    with pytest.raises(RegistryError, match="not a x publisher built from XCredentials"):
        adapter_class(wrong)
    assert adapter_class(X).platform == "x"
