"""Accounts on tweepy and Mastodon.py share one pool of connections per process
(`jobs/adapters/pools.py`), and nothing of one account's reaches another's requests."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from jobs.adapters import pools
from jobs.adapters.mastodon import MastodonPublisher
from jobs.adapters.x import XPublisher
from jobs.outgoing import Outgoing
from tests.conftest import build_adapter
from tests.fakeplatform import FakePlatformServer
from tests.fakeplatform import mastodon as fm
from tests.fakeplatform import x as fx

TIMEOUT = 5.0


@pytest.fixture
def fake() -> Iterator[FakePlatformServer]:
    with FakePlatformServer() as server:
        yield server


@pytest.fixture(autouse=True)
def own_pools(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts with no pool: adapters other tests left open keep theirs."""
    monkeypatch.setattr(pools, "_shared", {})


def post(platform: str, text: str) -> Outgoing:
    return Outgoing(post_id=1, account="a", platform=platform, text=text,
                    idempotency_key=f"tminus-{uuid.uuid4()}", due_at=datetime.now(UTC))


def x_account(fake: FakePlatformServer, token: str) -> XPublisher:
    fx.add_user(fake, token, f"user_{token}")
    pub: XPublisher = build_adapter(XPublisher, token, {
        "API_KEY": "key", "API_SECRET": "secret", "ACCESS_TOKEN": token,
        "ACCESS_SECRET": f"secret-of-{token}", "API_BASE": fake.url}, timeout=TIMEOUT)
    return pub


def masto_account(fake: FakePlatformServer, token: str) -> MastodonPublisher:
    fm.add_account(fake, token, f"user_{token}")
    pub: MastodonPublisher = build_adapter(
        MastodonPublisher, token, {"INSTANCE": fake.url, "ACCESS_TOKEN": token},
        timeout=TIMEOUT)
    return pub


def bearer(request: Any) -> str:
    return str(request.header("Authorization"))


def test_x_accounts_take_turns_on_one_connection_each_signing_its_own(
        fake: FakePlatformServer) -> None:
    a, b = x_account(fake, "token-a"), x_account(fake, "token-b")
    for i in range(3):
        a.publish(post("x", f"a says {i}"))
        b.publish(post("x", f"b says {i}"))
    assert fake.connections == 1
    requests = fake.requests_to("POST", r"^/2/tweets$")
    assert [('oauth_token="token-a"' in bearer(r), 'oauth_token="token-b"' in bearer(r))
            for r in requests] == [(True, False), (False, True)] * 3
    assert {t["author_id"] for t in fx.tweets(fake)} == {
        fx.state(fake)["tokens"]["token-a"], fx.state(fake)["tokens"]["token-b"]}


def test_a_cookie_set_for_one_account_is_never_sent_for_another(
        fake: FakePlatformServer) -> None:
    a, b = masto_account(fake, "masto-a"), masto_account(fake, "masto-b")
    fake.fault("POST", r"^/api/v1/statuses$",
               headers={"Set-Cookie": "_session_id=of-a; Path=/; HttpOnly"})
    a.publish(post("mastodon", "a first"))
    b.publish(post("mastodon", "b after a"))
    a.publish(post("mastodon", "a again"))
    first, of_b, again = fake.requests_to("POST", r"^/api/v1/statuses$")
    assert fake.connections == 1          # one socket for both accounts...
    assert of_b.header("Cookie") is None  # ...yet a's cookie stays in a's session
    assert again.header("Cookie") == "_session_id=of-a"
    assert [bearer(r) for r in (first, of_b, again)] == [
        "Bearer masto-a", "Bearer masto-b", "Bearer masto-a"]


def test_x_and_mastodon_accounts_on_one_host_share_the_pool(fake: FakePlatformServer) -> None:
    x, masto = x_account(fake, "token-c"), masto_account(fake, "masto-c")
    x.publish(post("x", "on X"))
    masto.publish(post("mastodon", "on Mastodon"))
    assert fake.connections == 1
    assert bearer(fake.requests_to("POST", r"^/api/v1/statuses$")[0]) == "Bearer masto-c"


def test_the_pool_closes_with_the_last_adapter_and_a_new_one_starts_afresh(
        fake: FakePlatformServer) -> None:
    a, b = masto_account(fake, "masto-d"), masto_account(fake, "masto-e")
    a.publish(post("mastodon", "d"))
    a.close()
    b.publish(post("mastodon", "e, a closed"))    # b's pool is still open...
    assert fake.connections == 1
    b.close()
    c = masto_account(fake, "masto-f")
    c.publish(post("mastodon", "f, after all closed"))   # ...and closed with b
    assert fake.connections == 2
    c.close()


def test_a_forked_process_never_uses_its_parent_s_connections(
        monkeypatch: pytest.MonkeyPatch) -> None:
    parent, parent_found = pools._acquire(1)
    with monkeypatch.context() as child_process:
        child_process.setattr(pools.os, "getpid", lambda: -1)   # as in a child after fork
        child, child_found = pools._acquire(2)
        assert child is not parent and child_found is not parent_found
        pools._release(2)
    assert pools._acquire(3) == (parent, parent_found)
    pools._release(1)
    pools._release(3)


def test_every_account_takes_the_pool_urllib3_found_for_the_first(
        fake: FakePlatformServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """urllib3's key work to find a server's pool is done once a process and server,
    not once a request: the pool found is kept, for every account on that server."""
    looked_up: list[str] = []
    real = pools.HTTPAdapter.get_connection_with_tls_context

    def counting(self: Any, request: Any, *args: Any, **kwargs: Any) -> Any:
        looked_up.append(str(request.url))
        return real(self, request, *args, **kwargs)

    monkeypatch.setattr(pools.HTTPAdapter, "get_connection_with_tls_context", counting)
    a, b = masto_account(fake, "masto-g"), masto_account(fake, "masto-h")
    x = x_account(fake, "token-g")
    for i in range(3):
        a.publish(post("mastodon", f"g {i}"))
        b.publish(post("mastodon", f"h {i}"))
        x.publish(post("x", f"x {i}"))
    # the fake serves both platforms on one host and port: one look-up in all
    assert len(looked_up) == 1
    assert fake.connections == 1
    # a pool closed since is looked up again (urllib3 makes a new one)
    manager, _, found = pools._shared[pools.os.getpid()]
    (pool,) = found.values()
    manager.pools.clear()
    pool.close()
    a.publish(post("mastodon", "g, after the pool closed"))
    assert len(looked_up) == 2
    assert len(fm.statuses(fake)) == 7
    for pub in (a, b, x):
        pub.close()


def test_a_request_through_a_proxy_finds_its_pool_the_usual_way(
        fake: FakePlatformServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """With a proxy, requests picks the proxy's pool itself, on every request."""
    a = masto_account(fake, "masto-i")
    a._api.session.trust_env = False
    a._api.session.proxies = {"http": fake.url}    # the fake as the proxy of itself
    looked_up: list[object] = []
    real = pools.HTTPAdapter.get_connection_with_tls_context

    def counting(self: Any, request: Any, verify: Any, proxies: Any = None,
                 cert: Any = None) -> Any:
        looked_up.append(proxies)
        return real(self, request, verify, proxies, cert)

    monkeypatch.setattr(pools.HTTPAdapter, "get_connection_with_tls_context", counting)
    a.publish(post("mastodon", "i 1"))
    a.publish(post("mastodon", "i 2"))
    assert looked_up == [{"http": fake.url}] * 2
    assert pools._shared[pools.os.getpid()][2] == {}
    a.close()
