"""Secrets at rest and in logs: the files tminus creates are its owner's alone, database
errors hide their parameters, and no log line, at any level and from any logger,
carries a credential or a session token — checked by running the real adapters
against the fake platforms at DEBUG with known secret values.
"""

from __future__ import annotations

import io
import logging
import os
import stat
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlmodel import Session

from jobs.adapters.base import MemorySessionStore
from jobs.adapters.bluesky import BlueskyPublisher
from jobs.adapters.dryrun import DryRunPublisher
from jobs.adapters.mastodon import MastodonPublisher
from jobs.adapters.x import XPublisher
from jobs.outgoing import Outgoing
from scheduler import logs
from scheduler.db import make_engine, upgrade
from scheduler.models import Account
from scheduler.settings import Settings
from tests.conftest import build_adapter, utcnow
from tests.fakeplatform import FakePlatformServer
from tests.fakeplatform import bluesky as fb
from tests.fakeplatform import mastodon as fm
from tests.fakeplatform import x as fx


@pytest.fixture
def umask_022() -> Iterator[None]:
    """The usual umask, under which a plain open() makes files readable by everyone."""
    old = os.umask(0o022)
    yield
    os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# -- files at rest ----------------------------------------------------------------------


def test_a_new_sqlite_database_and_its_wal_are_owner_only(tmp_path: Path, umask_022: None) -> None:
    db = tmp_path / "tminus.db"
    engine = make_engine(f"sqlite:///{db}")
    upgrade(engine)
    with Session(engine) as s:           # keep a connection open: -wal and -shm exist
        s.add(Account(name="a", platform="dryrun", credentials="", tier="default",
                      session="SESSION-STRING"))
        s.commit()
        files = [db, tmp_path / "tminus.db-wal", tmp_path / "tminus.db-shm"]
        assert all(f.exists() for f in files)
        assert {f.name: oct(mode(f)) for f in files} == {f.name: "0o600" for f in files}
    engine.dispose()


def test_an_existing_database_keeps_its_mode(tmp_path: Path, umask_022: None) -> None:
    db = tmp_path / "shared.db"
    db.touch(mode=0o640)
    make_engine(f"sqlite:///{db}").dispose()
    assert mode(db) == 0o640


def test_the_dry_run_outbox_is_owner_only(tmp_path: Path, umask_022: None) -> None:
    outbox = tmp_path / "out" / "outbox.jsonl"
    DryRunPublisher(outbox, now=utcnow).publish(Outgoing(
        post_id=1, account="a", platform="dryrun", text="not yet public",
        idempotency_key="k1", due_at=datetime.now(UTC)))
    assert mode(outbox) == 0o600


def test_database_errors_hide_their_parameters(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path}/t.db")
    upgrade(engine)
    row = {"name": "a", "platform": "bluesky", "credentials": "B", "tier": "default",
           "session": "eyJhbGciOiJIUzI1NiJ9.SECRET-SESSION.sig"}
    with engine.begin() as conn:
        conn.execute(sa.insert(Account.__table__), row)  # type: ignore[attr-defined]
    with pytest.raises(sa.exc.IntegrityError) as info, engine.begin() as conn:
        conn.execute(sa.insert(Account.__table__), row)  # type: ignore[attr-defined]
    assert "SECRET-SESSION" not in str(info.value)
    assert "hidden due to hide_parameters" in str(info.value)
    engine.dispose()


# -- logs ---------------------------------------------------------------------------------

SECRETS = {
    "TMINUS_ORG_X_API_KEY": "xkey-Q7fJ2mZp",
    "TMINUS_ORG_X_API_SECRET": "xsecret-8HvN3kLw0aR",
    "TMINUS_ORG_X_ACCESS_TOKEN": "xtoken-55-Tk9sUe4Bq",
    "TMINUS_ORG_X_ACCESS_SECRET": "xaccess-secret-Yy6cDx",
    "TMINUS_ORG_MASTO_ACCESS_TOKEN": "masto-token-Wq3rPz81",
    "TMINUS_ORG_BSKY_APP_PASSWORD": "bsky-pass-aa11-bb22",
}


def _post(text: str) -> Outgoing:
    return Outgoing(post_id=1, account="org", platform="x", text=text,
                    idempotency_key=f"tminus-{uuid.uuid4()}",
                    due_at=datetime.now(UTC) - timedelta(minutes=1))


def _run_every_adapter(fake: FakePlatformServer) -> list[str]:
    """Log in, check and publish on X, Mastodon and Bluesky; the session tokens the
    fake Bluesky issued."""
    fx.set_valid_token(fake, SECRETS["TMINUS_ORG_X_ACCESS_TOKEN"])
    fm.set_token(fake, SECRETS["TMINUS_ORG_MASTO_ACCESS_TOKEN"])
    fb.set_password(fake, SECRETS["TMINUS_ORG_BSKY_APP_PASSWORD"])
    x = build_adapter(XPublisher, "org_x", {
        "API_KEY": SECRETS["TMINUS_ORG_X_API_KEY"], "API_SECRET": SECRETS["TMINUS_ORG_X_API_SECRET"],
        "ACCESS_TOKEN": SECRETS["TMINUS_ORG_X_ACCESS_TOKEN"],
        "ACCESS_SECRET": SECRETS["TMINUS_ORG_X_ACCESS_SECRET"], "API_BASE": fake.url}, timeout=2)
    masto = build_adapter(MastodonPublisher, "org_masto", {
        "INSTANCE": fake.url, "ACCESS_TOKEN": SECRETS["TMINUS_ORG_MASTO_ACCESS_TOKEN"]}, timeout=2)
    store = MemorySessionStore()
    bsky = build_adapter(BlueskyPublisher, "org_bsky", {
        "HANDLE": fb.HANDLE, "APP_PASSWORD": SECRETS["TMINUS_ORG_BSKY_APP_PASSWORD"],
        "PDS": fake.url}, timeout=2, session_store=store)
    for n, pub in enumerate((x, masto, bsky)):
        pub.check()
        pub.publish(_post(f"3 days left, post {n} #Test"))
        pub.find(_post("never sent"), datetime.now(UTC) - timedelta(hours=1))
    bsky.close()
    tokens = list(fb.state(fake)["tokens"])
    assert tokens and store.session is not None and all(t in store.session for t in tokens)
    return tokens


@pytest.fixture
def debug_logs() -> Iterator[io.StringIO]:
    """tminus's own logging set-up at DEBUG, writing to a buffer."""
    settings = Settings.from_env({**SECRETS, "TMINUS_LOG_LEVEL": "DEBUG"})
    stream = io.StringIO()
    handler = logs.configure(settings, stream)
    levels = {name: logging.getLogger(name).level for name in logs.QUIET}
    yield stream
    logging.getLogger().removeHandler(handler)
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


def _leaks(text: str, tokens: list[str]) -> list[str]:
    return [s for s in [*SECRETS.values(), *tokens] if s in text]


def test_no_secret_in_any_log_line_at_debug(debug_logs: io.StringIO) -> None:
    with FakePlatformServer() as fake:
        tokens = _run_every_adapter(fake)
    logging.getLogger("tminus.test").debug("a line of our own, to show the handler is on")
    written = debug_logs.getvalue()
    assert "a line of our own" in written
    assert _leaks(written, tokens) == []


def test_redaction_alone_holds_when_the_http_libraries_log_everything(debug_logs: io.StringIO) -> None:
    """The libraries that dump requests are kept quiet; here they are let loose, and a
    plain handler beside ours shows what they would have written."""
    for name in logs.QUIET:
        logging.getLogger(name).setLevel(logging.DEBUG)
    raw = io.StringIO()
    plain = logging.StreamHandler(raw)
    plain.setFormatter(logging.Formatter("%(name)s: %(message)s"))
    logging.getLogger().addHandler(plain)
    try:
        with FakePlatformServer() as fake:
            tokens = _run_every_adapter(fake)
    finally:
        logging.getLogger().removeHandler(plain)
    exposed = _leaks(raw.getvalue(), tokens)
    # oauthlib and requests_oauthlib write the X credentials; the exposure is real
    assert SECRETS["TMINUS_ORG_X_API_KEY"] in exposed and SECRETS["TMINUS_ORG_X_ACCESS_TOKEN"] in exposed
    written = debug_logs.getvalue()
    assert "oauthlib" in written          # the same lines went through our handler
    assert _leaks(written, tokens) == []


@pytest.mark.parametrize("line", [
    "Authorization: OAuth oauth_consumer_key=\"abc123def\", oauth_token=\"tok-999-xyz\"",
    "{'Authorization': 'Bearer zzTOKENzz123'}",
    "POST&https%3A%2F%2Fapi&oauth_consumer_key%3Dabc123def%26oauth_token%3Dtok-999-xyz",
    "session eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJkaWQ6cGxjOngifQ.c2lnbmF0dXJl saved",
    "postgresql://tminus:pa55word@db.example/tminus",
    "{\"accessJwt\": \"opaque-access-1\", \"refreshJwt\": \"opaque-refresh-2\"}",
])
def test_token_shapes_are_redacted(line: str) -> None:
    out = logs.redact(line)
    for secret in ("abc123def", "tok-999-xyz", "zzTOKENzz123", "c2lnbmF0dXJl", "pa55word",
                   "opaque-access-1", "opaque-refresh-2"):
        assert secret not in out, out
    assert "[redacted]" in out


def test_credential_values_are_redacted_also_percent_encoded() -> None:
    settings = Settings.from_env({"TMINUS_ORG_X_API_SECRET": "se/cr+et=1", "TMINUS_POLL_SECONDS": "2",
                                  "TMINUS_DATABASE_URL": "postgresql://u:dbpass99@h/db"})
    secrets = logs.secret_values(settings)
    assert "se%2Fcr%2Bet%3D1" in secrets and "dbpass99" in secrets and "2" not in secrets
    assert logs.redact("key=se/cr+et=1 or se%2Fcr%2Bet%3D1", secrets) == "key=[redacted] or [redacted]"


def test_prepared_secrets_redact_exactly_as_the_list_of_values_does() -> None:
    # The formatters index their secrets (`logs.Secrets`) instead of trying every one
    # on every line: the same lines must come out. Values share beginnings, nest in
    # one another, overlap, repeat and sit at either end of a line; some are shorter
    # than the index's key. (None holds a letter of "[redacted]": a value spanning a
    # mark would be a quirk of the order of replacing, not a secret in the line.)
    import random
    rng = random.Random(12)
    alphabet = "bf%2F-_xyz019"
    base = ["".join(rng.choice(alphabet) for _ in range(rng.randint(2, 24))) for _ in range(60)]
    values = [*base, *(v[: len(v) // 2] for v in base[:15]), *(v + "tail" for v in base[:10])]
    many, few = logs.Secrets([*values, "", *values[:5]]), logs.Secrets(values[:20])
    assert len(many.values) > logs.Secrets.FEW >= len(few.values)    # both ways of looking
    for prepared in (many, few):
        for _ in range(400):
            line = "".join(rng.choice([rng.choice(values), rng.choice(alphabet), " ", "=",
                                       "\n"]) for _ in range(rng.randint(0, 40)))
            assert logs.redact(line, prepared) == logs.redact(line, prepared.values), line
    assert prepared.found_in("") == [] and logs.Secrets([]).found_in("anything") == []


def test_shapes_skipped_by_their_words_redact_as_every_pattern_run() -> None:
    # `redact` runs a token shape only on a line holding one of its words: the lines
    # must come out as with every pattern run on every line. Fragments of every shape,
    # in any case, cut, joined and beside letters that IGNORECASE matches to ASCII
    # ones (Kelvin sign, long s, dotless i: such lines run every pattern).
    import random
    rng = random.Random(7)

    def every_pattern(line: str) -> str:
        for pattern, replacement, _ in logs._SHAPES:
            line = pattern.sub(replacement, line)
        return line

    pieces = ["eyJhbGciOi", ".eyJzdWIiOi", ".c2lnbmF0", "Bearer ", "BASIC ", "zzTOKENzz123",
              "oauth_token", "OAuth_Nonce", "access_token", "refreshJwt", "App_Password",
              "password", "=", ":", "\"", "%3D", "authorization", "AUTHORIZATION: ", "://",
              "user:", "pa55@", "/", " ", "tok", "en", "jw", "t", "pass", "word", "x" * 8,
              "\u212a", "\u017f", "\u0131", "é", "\n", "sent on acct0001: the deadline #1"]
    for _ in range(3000):
        line = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 12)))
        for case in (line, line.upper(), line.lower(), line.swapcase()):
            assert logs.redact(case) == every_pattern(case), case


def test_a_failed_session_save_logs_no_token(caplog: pytest.LogCaptureFixture) -> None:
    class BrokenStore(MemorySessionStore):
        def save(self, session: str) -> None:
            raise RuntimeError(f"disk full while writing {session}")

    with FakePlatformServer() as fake:
        pub = build_adapter(
            BlueskyPublisher, "org_bsky", {"HANDLE": fb.HANDLE, "APP_PASSWORD": fb.PASSWORD, "PDS": fake.url},
            timeout=2, session_store=BrokenStore())
        with caplog.at_level(logging.DEBUG):
            pub.publish(_post("the session is not saved, the post still goes"))
        pub.close()
        tokens = list(fb.state(fake)["tokens"])
    [record] = [r for r in caplog.records if "could not save the session" in r.getMessage()]
    assert record.exc_info is None and "RuntimeError" in record.getMessage()
    assert tokens and not [t for t in tokens if t in caplog.text]
