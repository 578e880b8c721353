"""One pool of HTTP connections per process for every account on a requests-based SDK
(tweepy, Mastodon.py), instead of one per account.

A burst sends from up to TMINUS_CONCURRENCY accounts at once, far fewer than a
campaign's accounts: with a pool per account, every account's first post opened a
connection of its own (TCP connect, a urllib3 pool built, a thread on the server) and
kept it idle afterwards. Shared, a lane's next account takes the connection the last
one left (0.3 ms of our CPU a post, and the server's).

Only sockets are shared. Each account keeps its own `requests.Session` (the SDK's),
so its cookie jar, headers and auth stay its own: the Authorization header is put on
each request by the SDK (tweepy signs each one with the account's OAuth keys;
Mastodon.py adds its Bearer token), and a cookie a server sets is kept in that
account's session alone (`tests/test_adapter_pools.py` checks both). An HTTP/1.1
connection carries nothing from one request to the next.

urllib3's PoolManager is thread-safe (the daemon's lanes and its housekeeping share
it) and keys its pools by scheme, host, port and TLS settings, so accounts on different
servers or CA bundles never share a connection. A process forked after connections
were opened (a sending child) builds a pool of its own: two processes must never write
to one socket. The pool is closed when the last adapter using it closes.

Finding the pool of a request's server is urllib3's key work on every request (the URL
parsed, the TLS settings merged into a key of thirty fields, looked up under a lock):
about 5% of a post's CPU. The pool found is kept per process, by scheme, host and port
with the TLS settings (`verify`, `cert`) the request asked for, so every account's
requests to one server after the first take it from a dict. A request through a
proxy is found the usual way, and a pool closed since is found again.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from requests import PreparedRequest
from requests.adapters import HTTPAdapter
from urllib3 import PoolManager
from urllib3.connectionpool import ConnectionPool

# Connections kept per host: above TMINUS_CONCURRENCY's ceiling (4,096), so that a
# burst's connections all go back to the pool (beyond it urllib3 closes them, with a
# warning each).
MAX_PER_HOST = 4096
# Servers kept a pool for (X, each Mastodon instance). urllib3 drops the least recently
# used pool past this many (and a request a lane was just starting on it could fail,
# "pool is closed", where the pool is closed): so many that a campaign never gets there.
HOSTS = 1024

_lock = threading.Lock()
# the pool found for (scheme, host and port, verify, cert), per PoolManager
_Found = dict[tuple[str, str, Any, Any], ConnectionPool]
# pid -> (pools, adapters using it, the pools found)
_shared: dict[int, tuple[PoolManager, set[int], _Found]] = {}


def _acquire(user: int) -> tuple[PoolManager, _Found]:
    with _lock:
        pid = os.getpid()
        if pid not in _shared:
            # any other pid's entry was inherited through fork: left alone, never used
            _shared[pid] = (PoolManager(num_pools=HOSTS, maxsize=MAX_PER_HOST), set(), {})
        manager, users, found = _shared[pid]
        users.add(user)
        return manager, found


def _release(user: int) -> None:
    with _lock:
        entry = _shared.get(os.getpid())
        if entry is None or user not in entry[1]:
            return
        entry[1].discard(user)
        if not entry[1]:
            del _shared[os.getpid()]
            entry[2].clear()
            entry[0].clear()


class SharedPoolAdapter(HTTPAdapter):
    """requests' transport adapter on the process's shared pool (see the module
    docstring); subclasses add what each SDK's adapter needs in `send`."""

    def init_poolmanager(self, connections: int, maxsize: int, block: bool = False,
                         **pool_kwargs: Any) -> None:
        # what HTTPAdapter records for pickling, then the shared pool in place of its own
        self._pool_connections, self._pool_maxsize, self._pool_block = (
            connections, maxsize, block)
        self.poolmanager, self._found = _acquire(id(self))

    def get_connection_with_tls_context(
            self, request: PreparedRequest, verify: bool | str | None,
            proxies: Mapping[str, str] | None = None,
            cert: bytes | str | tuple[bytes | str, bytes | str] | None = None,
    ) -> ConnectionPool:
        """The pool of the request's server, as requests finds it, kept per process (the
        module docstring); a request through a proxy is found the usual way."""
        if proxies or not request.url:
            return super().get_connection_with_tls_context(
                request, verify, proxies, cert)  # type: ignore[arg-type]
        parts = urlsplit(request.url)
        key = (parts.scheme.lower(), parts.netloc.lower(), verify, cert)
        pool = self._found.get(key)
        if pool is None or getattr(pool, "pool", None) is None:  # not yet, or closed since
            pool = super().get_connection_with_tls_context(
                request, verify, None, cert)  # type: ignore[arg-type]
            self._found[key] = pool
        return pool

    def close(self) -> None:
        """This adapter stops using the pool; the last one out closes it."""
        _release(id(self))
        for proxy in self.proxy_manager.values():
            proxy.clear()
