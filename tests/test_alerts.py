"""Alerts: a fake webhook (a local HTTP server, reached through Apprise's own `json://`)
receives exactly the grouped messages for a scripted run of failures; a webhook that
hangs never delays a post; failed deliveries are retried with backoff and recorded; no
Apprise URL or token reaches a log line, even at DEBUG."""

from __future__ import annotations

import io
import json
import logging
import os
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select

from jobs.errors import AuthError, PermanentError
from scheduler import alerts, logs
from scheduler.alerts import AppriseSender, add_test_message, sweep
from scheduler.clock import VirtualClock
from scheduler.daemon import Daemon
from scheduler.db import session
from scheduler.models import AlertMessage, Post, PostState
from scheduler.models import Daemon as DaemonRow
from scheduler.service.alerts import alert_log, notify_test, sender_for
from scheduler.service.pauses import Target, pause, resume
from scheduler.settings import Settings
from tests.conftest import CampaignFactory, CliResult
from tests.test_pause import DEADLINE, LAST_CALL, _approved
from tests.test_queue import Scripted, _worker

S = PostState
EVERY = timedelta(minutes=5)


@pytest.fixture
def engine(any_engine: Engine) -> Engine:
    """On SQLite and on PostgreSQL: several daemons collect and deliver at once there."""
    return any_engine


class Webhook:
    """A JSON webhook on 127.0.0.1: records every message; answers `status`, or holds
    the request open until `release` while `hang` is set."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self.status = 200
        self.hang = False
        self.hanging = threading.Event()       # a request is being held open
        self.release = threading.Event()
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if hook.hang:
                    hook.hanging.set()
                    hook.release.wait(60)
                hook.messages.append(json.loads(body))
                self.send_response(hook.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"json://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def titles(self) -> list[str]:
        return [m["title"] for m in self.messages]

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    hook = Webhook()
    yield hook
    hook.close()


def _beat(engine: Engine, clock: VirtualClock) -> None:
    """A daemon alive as far as the database can tell (a heartbeat now)."""
    with session(engine) as s:
        row = s.get(DaemonRow, "elsewhere") or DaemonRow(
            id="elsewhere", hostname="h", pid=1, started_at=clock.now(), beat_at=clock.now())
        row.beat_at = clock.now()
        s.add(row)


def _states(engine: Engine) -> dict[int, PostState]:
    with session(engine) as s:
        return {p.id: p.state for p in s.exec(select(Post)).all() if p.id is not None}


def test_a_scripted_run_of_failures_arrives_grouped(
        engine: Engine, make_campaign: CampaignFactory, webhook: Webhook) -> None:
    _approved(engine, make_campaign)
    clock = VirtualClock(LAST_CALL)
    sender = AppriseSender([webhook.url])
    _beat(engine, clock)
    assert sweep(engine, sender, clock.now, EVERY).collected == 0   # nothing yet; cursors set
    # the day's daily and both last calls are refused; the earlier dailies expire
    worker, _ = _worker(engine, clock, Scripted(clock, [PermanentError("duplicate text")] * 3))
    assert worker.tick().failed == 3
    r = sweep(engine, sender, clock.now, EVERY)
    assert (r.collected, r.grouped) == (5, 2)
    assert sorted(webhook.titles()) == ["tminus: 2 post(s) expired unsent — testcamp",
                                        "tminus: 3 post(s) failed — testcamp"]
    failed = next(m for m in webhook.messages if "failed" in m["title"])
    failed_ids = sorted(pid for pid, st in _states(engine).items() if st == S.FAILED)
    assert [f"#{pid}" in failed["message"] for pid in failed_ids] == [True] * 3
    assert failed["message"].count("duplicate text") == 3

    # within five minutes: a pause and a resume are one message each, the next
    # failure waits for its group's window
    clock.advance(60)
    _beat(engine, clock)
    pause(engine, Target(everything=True), reason="news broke", by="Ana", now=clock.now())
    resume(engine, Target(everything=True), by="Ben", now=clock.now())
    sweep(engine, sender, clock.now, EVERY)
    assert webhook.titles()[2:] == ["tminus: 1 pause(s)", "tminus: 1 resume(s)"]
    assert "Ana" in webhook.messages[2]["message"] and "news broke" in webhook.messages[2]["message"]
    # still nothing more when swept again
    sweep(engine, sender, clock.now, EVERY)
    assert len(webhook.messages) == 4

    # past the deadline: one message with the totals, once
    clock.set(DEADLINE + timedelta(minutes=2))
    sweep(engine, sender, clock.now, EVERY)
    sweep(engine, sender, clock.now, EVERY)
    assert webhook.titles()[4:] == ["tminus: 1 deadline(s) passed — testcamp"]
    assert "2 expired, 3 failed" in webhook.messages[4]["message"]
    assert [m.sent_at is not None for m in alert_log(engine).messages] == [True] * 5


def test_collectors_racing_say_each_thing_once(
        engine: Engine, make_campaign: CampaignFactory, webhook: Webhook) -> None:
    """Four daemons' alert threads at once: one message per group, each sent once."""
    _approved(engine, make_campaign)
    clock = VirtualClock(LAST_CALL)
    _beat(engine, clock)
    sweep(engine, AppriseSender([webhook.url]), clock.now, EVERY)
    worker, _ = _worker(engine, clock, Scripted(clock, [PermanentError("refused")] * 3))
    worker.tick()
    clock.set(DEADLINE + timedelta(minutes=2))          # and the deadline has passed
    _beat(engine, clock)
    errors: list[BaseException] = []

    def one() -> None:
        try:
            for _ in range(3):
                sweep(engine, AppriseSender([webhook.url]), clock.now, EVERY)
        except BaseException as e:      # pragma: no cover - the assertion below says it
            errors.append(e)

    threads = [threading.Thread(target=one) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(webhook.titles()) == ["tminus: 1 deadline(s) passed — testcamp",
                                        "tminus: 2 post(s) expired unsent — testcamp",
                                        "tminus: 3 post(s) failed — testcamp"]


def test_bad_alert_settings_are_one_line_errors() -> None:
    from content.errors import TminusError
    for env, words in [({"TMINUS_LOG_FORMAT": "xml"}, "TMINUS_LOG_FORMAT='xml'"),
                       ({"TMINUS_NOTIFY_EVERY": "-5"}, "TMINUS_NOTIFY_EVERY"),
                       ({"TMINUS_NOTIFY_EVERY": "1e9"}, "out of range")]:
        with pytest.raises(TminusError, match=words):
            Settings.from_env(env)
    assert Settings.from_env({"TMINUS_NOTIFY": " a://x, b://y  c://z"}).notify_urls == (
        "a://x", "b://y", "c://z")


def test_one_message_per_kind_and_campaign_per_window(
        engine: Engine, make_campaign: CampaignFactory, webhook: Webhook) -> None:
    _approved(engine, make_campaign)
    clock = VirtualClock(LAST_CALL - timedelta(hours=1))   # the day's daily is due
    sender = AppriseSender([webhook.url])
    _beat(engine, clock)
    sweep(engine, sender, clock.now, EVERY)
    worker, _ = _worker(engine, clock, Scripted(clock, [AuthError("401 token revoked")]))
    worker.tick()                                   # the daily's login is refused
    clock.set(LAST_CALL)
    _beat(engine, clock)
    sweep(engine, sender, clock.now, EVERY)
    account = [m for m in webhook.messages if "account(s) paused" in m["title"]]
    assert len(account) == 1 and "org (dryrun): " in account[0]["message"]
    assert "401 token revoked" in account[0]["message"]
    # a second failure inside the window joins the next message, after the window
    worker2, _ = _worker(engine, clock, Scripted(clock, [PermanentError("too long")] * 2))
    # the org account stays paused: only partner's last call goes out, and fails
    assert worker2.tick().failed == 1
    sweep(engine, sender, clock.now, EVERY)
    n = len(webhook.messages)
    clock.advance(60)
    _beat(engine, clock)
    sweep(engine, sender, clock.now, EVERY)
    assert len(webhook.messages) == n                # nothing new at all
    # the pause itself is said once only, however often swept
    assert len([m for m in webhook.messages if "account(s) paused" in m["title"]]) == 1


def test_posts_due_and_no_daemon_alive_is_said_once(
        engine: Engine, make_campaign: CampaignFactory, webhook: Webhook) -> None:
    _approved(engine, make_campaign)
    clock = VirtualClock(LAST_CALL - timedelta(minutes=59, seconds=30))  # the daily: just due
    sender = AppriseSender([webhook.url])
    sweep(engine, sender, clock.now, EVERY)
    assert webhook.titles() == []          # within the grace: a daemon may be restarting
    clock.advance(60)
    sweep(engine, sender, clock.now, EVERY)
    clock.advance(600)
    sweep(engine, sender, clock.now, EVERY)
    said = [m for m in webhook.messages if "no daemon" in m["title"]]
    assert len(said) == 1 and "1 queued post(s) are due" in said[0]["message"]
    assert said[0]["title"] == "tminus: no daemon is running and posts are due"
    assert "none ever ran" in said[0]["message"]


def test_failed_deliveries_are_retried_with_backoff_and_recorded(
        engine: Engine, webhook: Webhook) -> None:
    clock = VirtualClock(LAST_CALL)
    sender = AppriseSender([webhook.url])
    webhook.status = 500
    msg_id = add_test_message(engine, clock.now())
    r = alerts.deliver(engine, sender, clock.now)
    assert (r.sent, r.failed) == (0, 1)
    with session(engine) as s:
        msg = s.get(AlertMessage, msg_id)
        assert msg is not None and msg.attempts == 1 and msg.sent_at is None
        assert msg.next_try_at == clock.now() + timedelta(seconds=30)
        assert msg.last_error and "failure" in msg.last_error
    clock.advance(29)
    assert alerts.deliver(engine, sender, clock.now).failed == 0   # not yet: backing off
    clock.advance(1)
    assert alerts.deliver(engine, sender, clock.now).failed == 1   # second try, 60 s next
    with session(engine) as s:
        msg = s.get(AlertMessage, msg_id)
        assert msg is not None and msg.next_try_at == clock.now() + timedelta(seconds=60)
    webhook.status = 200
    clock.advance(60)
    assert alerts.deliver(engine, sender, clock.now).sent == 1
    line = alert_log(engine).messages[0]
    assert (line.attempts, line.sent_at, line.last_error) == (3, clock.now(), None)
    assert len(webhook.messages) == 3


def test_a_hanging_webhook_never_delays_a_post(
        engine: Engine, make_campaign: CampaignFactory, webhook: Webhook) -> None:
    """The daemon itself: its alert thread is stuck in a webhook that does not answer
    while the posts go out at their time on the injected clock."""
    _approved(engine, make_campaign)
    clock = VirtualClock(LAST_CALL - timedelta(minutes=62))     # nothing due yet
    webhook.hang = True
    worker, _ = _worker(engine, clock)
    add_test_message(engine, clock.now())
    daemon = Daemon(worker, alerts=AppriseSender([webhook.url], timeout=60))
    seen: dict[str, Any] = {}

    def script() -> None:
        try:
            assert webhook.hanging.wait(30), "the alert thread never reached the webhook"
            clock.set(LAST_CALL)         # the day's daily and the last calls are due now
            daemon.wake()
            for _ in range(600):         # the daemon's own threads do the work
                if sum(st == S.PUBLISHED for st in _states(engine).values()) >= 3:
                    break
                threading.Event().wait(0.05)
            seen["published"] = sum(st == S.PUBLISHED for st in _states(engine).values())
            seen["still hanging"] = not webhook.release.is_set() and webhook.messages == []
            with session(engine) as s:
                seen["published_at"] = sorted(p.published_at for p in s.exec(select(Post)).all()
                                              if p.published_at)
        finally:
            daemon.stop("test over")

    t = threading.Thread(target=script)
    t.start()
    daemon.run()
    t.join()
    webhook.release.set()
    assert seen["published"] == 3 and seen["still hanging"]
    # at once by the daemon's clock, all while the webhook held the alert thread
    assert seen["published_at"] == [LAST_CALL] * 3


def test_no_apprise_url_or_token_reaches_a_log_at_debug(
        engine: Engine, webhook: Webhook) -> None:
    url = webhook.url.replace("json://", "json://alerter:hunter2secret@") + "/tok3nsegment42"
    settings = Settings(log_level="DEBUG", notify_urls=(url,))
    stream = io.StringIO()
    handler = logs.configure(settings, stream)
    try:
        logging.getLogger("apprise").setLevel(logging.DEBUG)    # even Apprise's own debug
        clock = VirtualClock(LAST_CALL)
        sender = AppriseSender([url], secrets=logs.secret_values(settings))
        webhook.status = 500
        add_test_message(engine, clock.now())
        alerts.deliver(engine, sender, clock.now)
        logging.getLogger("tminus.test").debug("config: %s", url)
        webhook.status = 200
        clock.advance(60)
        alerts.deliver(engine, sender, clock.now)
    finally:
        logging.getLogger().removeHandler(handler)
    text = stream.getvalue()
    assert "alert 1 not delivered" in text and "alert 1 delivered" in text
    for secret in ("hunter2secret", "tok3nsegment42", url):
        assert secret not in text
    assert sender.describe() == [d for d in sender.describe() if "hunter2secret" not in d]
    with session(engine) as s:
        assert all("hunter2secret" not in (m.last_error or "") for m in s.exec(select(AlertMessage)))


def test_json_log_lines_carry_ids_and_no_secret(tmp_path: Any) -> None:
    settings = Settings(log_format="json", env={"TMINUS_ORG_X_API_SECRET": "s3cr3t-value-9"})
    stream = io.StringIO()
    handler = logs.configure(settings, stream)
    try:
        logging.getLogger("tminus.daemon").info("sent on %s with s3cr3t-value-9", "org",
                                                extra={"post_id": 7, "account": "org"})
        logging.getLogger("tminus.daemon").warning("Authorization: Bearer abcdefghijkl")
    finally:
        logging.getLogger().removeHandler(handler)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [(x["level"], x["logger"]) for x in lines] == [("INFO", "tminus.daemon"),
                                                           ("WARNING", "tminus.daemon")]
    assert lines[0]["message"] == "sent on org with [redacted]"
    assert (lines[0]["post_id"], lines[0]["account"]) == (7, "org")
    assert "abcdefghijkl" not in lines[1]["message"] and "time" in lines[1]


def test_notify_test_reports_where_it_sent(engine: Engine, webhook: Webhook) -> None:
    clock = VirtualClock(LAST_CALL)
    settings = Settings(notify_urls=(webhook.url.replace("json://", "json://u:pw123456@"),))
    r = notify_test(engine, settings, clock.now)
    assert r.delivered and webhook.titles() == ["tminus: test message"]
    assert r.destinations and all("pw123456" not in d for d in r.destinations)
    # as the person wrote it, the password masked; none of Apprise's own options
    # (`?method=POST&overflow=upstream&retry=0&…`)
    scheme, _, rest = webhook.url.partition("://")
    assert len(r.destinations) == 1
    assert r.destinations[0] in (f"{scheme}://u:****@{rest}", f"{scheme}://u:[redacted]@{rest}")


def test_notify_destinations_are_as_written() -> None:
    """Only the options a person wrote are shown; a token in a path is masked."""
    sender = AppriseSender(["json://127.0.0.1:9/hook?method=PUT",
                            "tgram://123456:ABCdefSecretToken/987654",
                            "ntfys://ntfy.sh/alerts-topic"])
    said = sender.describe()
    assert said[0] == "json://127.0.0.1:9/hook?method=PUT"
    assert said[1].startswith("tgram://") and "ABCdefSecretToken" not in said[1]
    assert said[2] == "ntfys://ntfy.sh/alerts-topic"
    assert not any("overflow" in d or "retry" in d for d in said)


def test_notify_commands(cli: Any, webhook: Webhook, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TMINUS_NOTIFY", f"{webhook.url}, {webhook.url}?x=1")
    r: CliResult = cli("notify", "test")
    assert r.code == 0 and "test message delivered" in r.out
    assert len(webhook.messages) == 2              # both addresses
    r = cli("notify", "status")
    assert r.code == 0 and "test message: sent" in r.out
    r = cli("notify", "check")
    assert r.code == 0 and "collected 0" in r.out
    monkeypatch.setenv("TMINUS_NOTIFY", "nosuchservice://tok3n-abc/xyz")
    r = cli("notify", "test")
    assert r.code == 2 and "TMINUS_NOTIFY: URL 1 (nosuchservice://…)" in r.err
    assert "tok3n-abc" not in r.err and len(r.err.strip().splitlines()) == 1
    monkeypatch.delenv("TMINUS_NOTIFY")
    r = cli("notify", "test")            # asked for a test: without an address, an error
    assert r.code == 2 and "TMINUS_NOTIFY is not set" in r.err


def test_a_sender_made_while_another_sends_leaves_the_reason_said(
        webhook: Webhook, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two senders built at once (two `notify test`s on the web page) while a third sends
    to a refusing destination: Apprise's warning — the reason a person is shown — is
    kept, during the reads and after them; Apprise's logger keeps the level it had."""
    import apprise
    logger = logging.getLogger("apprise")
    level = logger.level
    webhook.status = 500
    sending = AppriseSender([webhook.url])
    inside, leave = threading.Barrier(3), threading.Event()
    add = apprise.Apprise.add

    def held(self: apprise.Apprise, *args: Any, **kwargs: Any) -> Any:
        inside.wait(10)                    # both readers are inside Apprise's add
        assert leave.wait(10)
        return add(self, *args, **kwargs)

    monkeypatch.setattr(apprise.Apprise, "add", held)
    made: list[AppriseSender] = []
    readers = [threading.Thread(target=lambda: made.append(AppriseSender([webhook.url])))
               for _ in range(2)]
    for t in readers:
        t.start()
    inside.wait(10)
    during = sending.send("t", "b", sending.destinations())
    leave.set()
    for t in readers:
        t.join(10)
    after = sending.send("t", "b", sending.destinations())
    assert len(made) == 2 and logger.level == level
    for said in (during, after):
        assert "error=500" in (said[webhook.url] or "")


def test_alerts_off_is_said_not_failed(cli: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without TMINUS_NOTIFY the timer's `notify check` exits 0 (systemd would mark the
    unit failed every minute) and says, on one line, that alerts are off and how to turn
    them on; `notify status` says so too."""
    monkeypatch.setenv("TMINUS_NOTIFY", "")
    assert cli("db", "upgrade").code == 0
    r: CliResult = cli("notify", "check")
    assert (r.code, r.err) == (0, "")
    assert len(r.out.strip().splitlines()) == 1
    assert "alerts are off: TMINUS_NOTIFY is not set" in r.out and "notify test" in r.out
    r = cli("notify", "status")
    assert r.code == 0 and "alerts are off" in r.out
    monkeypatch.setenv("TMINUS_NOTIFY", "json://127.0.0.1:9/x")
    assert "alerts are off" not in cli("notify", "status").out


def test_status_shows_the_last_delivery_and_a_failing_destination_without_its_secret(
        cli: Any, engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 16: a person trusting alerts learns from `tminus status` that they stopped
    arriving, and which destination fails — never its password or token."""
    good, bad = Webhook(), Webhook()
    try:
        bad.status = 500
        failing = bad.url.replace("json://", "json://alerts:s3cret-pass@")
        monkeypatch.setenv("TMINUS_NOTIFY", f"{good.url} {failing}")
        monkeypatch.setenv("TMINUS_DATABASE_URL", engine.url.render_as_string(hide_password=False))
        r: CliResult = cli("status")
        assert "alerts: none delivered yet" in r.out and "alerts: off" not in r.out
        sender = sender_for(Settings.from_env(dict(os.environ)))
        now = lambda: datetime.now(UTC)   # noqa: E731
        add_test_message(engine, now())
        assert alerts.deliver(engine, sender, now).failed == 1
        r = cli("status")
        port = bad.url.split(":")[2].split("/")[0]
        lines = r.out.splitlines()
        at = next(n for n, ln in enumerate(lines) if "not delivered" in ln)
        assert lines[at] == ("alert #1 not delivered to 1 of 2 destination(s) (tminus: test "
                             "message; 1 attempt(s), still being tried):")
        # each destination, as `notify test` shows it (what may be a secret masked): the
        # one that took it, and the one that failed with its reason
        assert lines[at + 1].startswith(f"    to {good.url}: delivered ")
        assert lines[at + 2].startswith(f"    to json://[redacted]:[redacted]@127.0.0.1:{port}"
                                        "/hook: not delivered (1 attempt(s)): failure: ")
        assert "error=500" in lines[at + 2]
        assert "s3cret-pass" not in r.out + r.err
        assert "alerts: last delivered" not in r.out
        bad.status = 200
        add_test_message(engine, now())
        assert alerts.deliver(engine, sender, now, only=2).sent == 1
        r = cli("status")
        assert "alerts: last delivered" in r.out and "(tminus: test message)" in r.out
        assert "not delivered" not in r.out          # what failed before the last delivery
        monkeypatch.delenv("TMINUS_NOTIFY")
        assert "alerts: off — set TMINUS_NOTIFY" in cli("status").out
    finally:
        good.close()
        bad.close()
