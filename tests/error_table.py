"""The error mapping of every adapter, in one table: platform × fault on the create
request -> what `publish()` raises (None: it settles the outcome itself and returns a
receipt), the post's next state in the scheduler, and how many copies the platform
holds right after. `tests/test_publisher_contract.py::test_error_mapping` runs each row
through a real `Worker` and then checks the scheduler ends the story right.

"before" means the platform never acted on the request (nothing was created), "after"
means it made the post and then answered badly. A "502 page" is a proxy's HTML error
page; "hang" answers nothing past the client's timeout; "reset" resets the connection
(a connection closed without an answer maps the same way: the adapters' tests hold
those cases). "401" revokes the account's credentials; "403" and "400" are the
platform refusing the post; "text too long" is its refusal in its own words (Mastodon
answers that with 422).

The dry run has no rows: it has no network, and its contract is part one of
`test_publisher_contract.py`.

Every create answer that does not prove the platform refused the post -- a 5xx of any
kind, a proxy's page, a timeout or reset after sending -- is an unknown outcome,
"before" as much as "after": the client cannot tell them apart, and the look-up that
follows (absent -> sent again, present -> published) is right for both. Bluesky settles
it at once by reading the post's own record key.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

from jobs.errors import AuthError, PermanentError, PublishError, TransientError, UnknownOutcome
from tests.fakeplatform import FakePlatformServer, proxy_page
from tests.fakeplatform import x as fx
from tests.platform_world import Platform

T, U, P, A = TransientError, UnknownOutcome, PermanentError, AuthError
MASTO_TOO_LONG = "Validation failed: Text character limit of 20 exceeded"
BSKY_TOO_LONG = "Record/text must not be longer than 300 graphemes"


@dataclass(frozen=True)
class Row:
    platform: str
    fault: str
    raises: type[PublishError] | None   # None: publish() returned a receipt
    next: str                           # queued | unknown | failed | published | paused
    copies: int                         # posts on the platform right after
    match: str = ""                     # a regex found in the error message (and last_error)
    sent: int = 1                       # create requests the attempt made

    @property
    def id(self) -> str:
        return f"{self.platform}-{self.fault.replace(' ', '-')}"


ERRORS = [
    # -- X: tweepy -> jobs/adapters/x.py::_http_error / _network_error ----------------------
    Row("x", "429", T, "queued", 0, "429"),
    Row("x", "500 before", U, "unknown", 0, "500"),
    Row("x", "502 before", U, "unknown", 0, "502"),
    Row("x", "503 before", U, "unknown", 0, "503 Service Unavailable"),
    Row("x", "504 before", U, "unknown", 0, "504"),
    Row("x", "500 after", U, "unknown", 1, "500"),
    Row("x", "502 after", U, "unknown", 1, "502"),
    Row("x", "503 after", U, "unknown", 1, "503 Service Unavailable"),
    Row("x", "504 after", U, "unknown", 1, "504"),
    Row("x", "502 page before", U, "unknown", 0, "502 Bad Gateway"),
    Row("x", "502 page after", U, "unknown", 1, "502 Bad Gateway"),
    Row("x", "hang before", U, "unknown", 0, "ReadTimeout"),
    Row("x", "hang after", U, "unknown", 1, "ReadTimeout"),
    Row("x", "reset before", U, "unknown", 0, "reset by peer"),
    Row("x", "reset after", U, "unknown", 1, "reset by peer"),
    Row("x", "401", A, "paused", 0, "401 Unauthorized"),
    Row("x", "403", P, "failed", 0, "403"),
    Row("x", "400", P, "failed", 0, "400"),
    Row("x", "text too long", P, "failed", 0, "400 " + re.escape(fx.TOO_LONG)),
    # -- Mastodon: Mastodon.py -> jobs/adapters/mastodon.py::_error -------------------------
    Row("mastodon", "429", T, "queued", 0, "HTTP 429"),
    Row("mastodon", "500 before", U, "unknown", 0, "HTTP 500"),
    Row("mastodon", "502 before", U, "unknown", 0, "HTTP 502"),
    Row("mastodon", "503 before", U, "unknown", 0, "HTTP 503"),
    Row("mastodon", "504 before", U, "unknown", 0, "HTTP 504"),
    Row("mastodon", "500 after", U, "unknown", 1, "HTTP 500"),
    Row("mastodon", "502 after", U, "unknown", 1, "HTTP 502"),
    Row("mastodon", "503 after", U, "unknown", 1, "HTTP 503"),
    Row("mastodon", "504 after", U, "unknown", 1, "HTTP 504"),
    Row("mastodon", "502 page before", U, "unknown", 0, "HTTP 502"),
    Row("mastodon", "502 page after", U, "unknown", 1, "HTTP 502"),
    Row("mastodon", "hang before", U, "unknown", 0, "no answer after sending"),
    Row("mastodon", "hang after", U, "unknown", 1, "no answer after sending"),
    Row("mastodon", "reset before", U, "unknown", 0, "no answer after sending"),
    Row("mastodon", "reset after", U, "unknown", 1, "no answer after sending"),
    Row("mastodon", "401", A, "paused", 0, "HTTP 401 The access token is invalid"),
    Row("mastodon", "403", P, "failed", 0, "HTTP 403 This action is not allowed"),
    Row("mastodon", "400", P, "failed", 0, "HTTP 400"),
    Row("mastodon", "text too long", P, "failed", 0, f"HTTP 422 {re.escape(MASTO_TOO_LONG)}"),
    # -- Bluesky: atproto -> jobs/adapters/bluesky.py::_create / _settle / _failure ---------
    # A create that may have reached the PDS is settled at once by getRecord under the
    # post's own record key: absent -> TransientError, present -> its receipt.
    Row("bluesky", "429", T, "queued", 0, "HTTP 429 RateLimitExceeded"),
    Row("bluesky", "500 before", T, "queued", 0, "HTTP 500.*does not exist"),
    Row("bluesky", "502 before", T, "queued", 0, "HTTP 502.*does not exist"),
    Row("bluesky", "503 before", T, "queued", 0, "HTTP 503.*does not exist"),
    Row("bluesky", "504 before", T, "queued", 0, "HTTP 504.*does not exist"),
    Row("bluesky", "500 after", None, "published", 1),
    Row("bluesky", "502 after", None, "published", 1),
    Row("bluesky", "503 after", None, "published", 1),
    Row("bluesky", "504 after", None, "published", 1),
    Row("bluesky", "502 page before", T, "queued", 0, "HTTP 502 <html>.*does not exist"),
    Row("bluesky", "502 page after", None, "published", 1),
    Row("bluesky", "hang before", T, "queued", 0, "ReadTimeout.*does not exist"),
    Row("bluesky", "hang after", None, "published", 1),
    Row("bluesky", "reset before", T, "queued", 0, "does not exist"),
    Row("bluesky", "reset after", None, "published", 1),
    Row("bluesky", "401", A, "paused", 0, "createSession: HTTP 401", sent=0),
    Row("bluesky", "403", P, "failed", 0, "createRecord: HTTP 403"),
    Row("bluesky", "400", P, "failed", 0, "createRecord: HTTP 400"),
    Row("bluesky", "text too long", P, "failed", 0, f"HTTP 400 .*{BSKY_TOO_LONG}"),
]


def inject(fake: FakePlatformServer, p: Platform, fault: str) -> None:
    """Make the platform's next create meet `fault` (a row's fault column)."""
    if fault == "429":
        p.rate_limit(fake, int(time.time()) + 3600)
    elif fault == "401":
        p.revoke(fake)
    elif fault == "text too long":
        p.too_long(fake)
    elif fault in ("403", "400"):
        fake.fault("POST", p.create, status=int(fault), **p.error_body(int(fault)))
    else:
        kind, when = fault.rsplit(" ", 1)
        after = when == "after"
        if kind[0].isdigit():
            status = int(kind.split()[0])
            body = proxy_page(status) if kind.endswith("page") else p.error_body(status)
            fake.fault("POST", p.create, **{"status_after" if after else "status": status},
                       **body)
        else:                                       # hang, reset
            fake.fault("POST", p.create, **{f"{kind}_after" if after else kind: True})
