"""Alerts to several destinations (migration 0007): real Apprise to two or three local
JSON webhooks, one refusing. A retry goes only to the destinations that have not taken
the message, so a working one never gets a copy; each destination's state is recorded
and shown by `notify test`, `notify status` (and `--json`), `status --json` and the
dashboard's home page, its secrets masked."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from scheduler import alerts
from scheduler.alerts import DROPPED, AppriseSender, add_test_message
from scheduler.clock import VirtualClock
from scheduler.logs import url_secrets
from scheduler.service.alerts import alert_log
from tests.conftest import CliResult
from tests.test_alerts import Webhook
from tests.test_pause import LAST_CALL
from tests.webfixtures import HTML, NOW, app_for, log_in, setup


@pytest.fixture
def hooks() -> Iterator[list[Webhook]]:
    made = [Webhook(), Webhook(), Webhook()]
    yield made
    for hook in made:
        hook.close()


def test_a_refusing_destination_is_retried_alone(any_engine: Engine, hooks: list[Webhook]) -> None:
    """Three tries while one destination refuses: the working one has exactly one copy,
    the refusing one is sent each try until it takes it; then nothing is sent again."""
    good, bad, _ = hooks
    bad.status = 500
    clock = VirtualClock(LAST_CALL)
    sender = AppriseSender([good.url, bad.url])
    first = clock.now()
    msg_id = add_test_message(any_engine, first)
    assert alerts.deliver(any_engine, sender, clock.now).failed == 1
    clock.advance(30)
    assert alerts.deliver(any_engine, sender, clock.now).failed == 1
    assert (len(good.messages), len(bad.messages)) == (1, 2)
    line = alert_log(any_engine).messages[0]
    assert line.sent_at is None and line.attempts == 2
    assert line.last_error and line.last_error.startswith("1 of 2 destination(s) refused it")
    took, refused = line.destinations
    assert (took.attempts, took.sent_at, took.last_error) == (1, first, None)
    assert (refused.attempts, refused.sent_at) == (2, None)
    assert refused.last_error and "error=500" in refused.last_error
    bad.status = 200
    clock.advance(60)
    assert alerts.deliver(any_engine, sender, clock.now, only=msg_id).sent == 1
    assert (len(good.messages), len(bad.messages)) == (1, 3)
    assert good.titles() == bad.titles()[:1] == ["tminus: test message"]
    line = alert_log(any_engine).messages[0]
    assert (line.sent_at, line.attempts, line.last_error) == (clock.now(), 3, None)
    assert [(d.attempts, d.sent_at, d.last_error) for d in line.destinations] == [
        (1, first, None), (3, clock.now(), None)]
    clock.advance(3600)
    assert alerts.deliver(any_engine, sender, clock.now) == alerts.Delivered()
    assert (len(good.messages), len(bad.messages)) == (1, 3)


def test_a_destination_taken_out_is_not_waited_for_and_one_added_gets_it(
        any_engine: Engine, hooks: list[Webhook]) -> None:
    """TMINUS_NOTIFY edited between two tries (the daemon restarted with it): the
    refusing destination that was removed is not tried again and no longer holds the
    message back; the one added is sent it; the one that took it gets no copy."""
    good, bad, added = hooks
    bad.status = 500
    clock = VirtualClock(LAST_CALL)
    add_test_message(any_engine, clock.now())
    assert alerts.deliver(any_engine, AppriseSender([good.url, bad.url]), clock.now).failed == 1
    clock.advance(30)
    assert alerts.deliver(any_engine, AppriseSender([good.url, added.url]), clock.now).sent == 1
    assert [len(h.messages) for h in hooks] == [1, 1, 1]
    line = alert_log(any_engine).messages[0]
    assert line.sent_at == clock.now()
    states = {d.destination: (d.attempts, d.sent_at, d.last_error) for d in line.destinations}
    assert states == {good.url: (1, clock.now() - timedelta(seconds=30), None),
                      bad.url: (1, None, DROPPED), added.url: (1, clock.now(), None)}


def test_destinations_alike_once_masked_are_told_apart() -> None:
    urls = ["json://alerts:pw-one-111@127.0.0.1:9/hook", "json://alerts:pw-two-222@127.0.0.1:9/hook",
            "ntfys://ntfy.sh/our-topic-8f3k2"]
    names = AppriseSender(urls, secrets=url_secrets(urls)).destinations()
    assert len(set(names)) == 3
    assert names[1] == names[0] + " (#2)" and names[0].startswith("json://")
    assert names[2] == "ntfys://ntfy.sh/[redacted]"
    assert not any(secret in " ".join(names) for secret in ("pw-one-111", "pw-two-222", "8f3k2"))


def test_an_error_out_of_apprise_itself_is_recorded_masked(monkeypatch: pytest.MonkeyPatch) -> None:
    urls = ["json://alerts:pw-one-111@127.0.0.1:9/hook", "ntfys://ntfy.sh/our-topic-8f3k2"]
    sender = AppriseSender(urls, secrets=url_secrets(urls))

    def fails(**_: Any) -> bool:
        raise OSError(f"cannot reach {urls[1]} as alerts:pw-one-111")
    monkeypatch.setattr(sender.apprise, "notify", fails)
    outcome = sender.send("t", "b", sender.destinations())
    assert set(outcome) == set(sender.destinations())
    said = " ".join(str(why) for why in outcome.values())
    assert "OSError" in said and "pw-one-111" not in said and "8f3k2" not in said


def test_each_destination_is_shown_by_the_commands(
        cli: Any, hooks: list[Webhook], monkeypatch: pytest.MonkeyPatch) -> None:
    good, bad, _ = hooks
    bad.status = 500
    failing = bad.url.replace("json://", "json://alerts:s3cret-pass@")
    monkeypatch.setenv("TMINUS_NOTIFY", f"{good.url} {failing}")
    masked = failing.replace("alerts:s3cret-pass", "[redacted]:[redacted]")
    r: CliResult = cli("notify", "test")
    assert r.code == 2
    assert f"  to {good.url}: delivered" in r.out.splitlines()
    assert f"  to {masked}: not delivered: failure: " in r.out and "error=500" in r.out
    assert r.err.splitlines()[-1].startswith("error: the test message was not delivered: 1 of 2 destination(s) "
                            f"refused it ({masked}: failure: ")
    r = cli("notify", "status")
    lines = r.out.splitlines()
    assert "not yet sent (1 attempt(s))" in lines[0]
    assert lines[1].startswith(f"    to {good.url}: delivered ")
    assert lines[2].startswith(f"    to {masked}: not delivered (1 attempt(s)): failure: ")
    data = json.loads(cli("notify", "status", "--json").out)
    where = data["messages"][0]["destinations"]
    assert [(d["destination"], d["attempts"], d["sent_at"] is not None) for d in where] == [
        (good.url, 1, True), (masked, 1, False)]
    assert "error=500" in where[1]["last_error"]
    failing_now = json.loads(cli("status", "--json").out)["details"]["alerts"]["failing"]
    assert [d["destination"] for d in failing_now[0]["destinations"]] == [good.url, masked]
    every = r.out + r.err + json.dumps(data) + json.dumps(failing_now)
    assert "s3cret-pass" not in every
    assert len(good.messages) == 1


def test_the_dashboard_shows_each_destination_of_a_failing_alert(
        engine: Engine, tmp_path: Path, hooks: list[Webhook]) -> None:
    """The home page's Alerts panel: which destination took the alert and which refuses
    it and why (its password masked); alerts off is said, not left blank."""
    folder = tmp_path / "camp"
    folder.mkdir()
    setup(engine, folder)
    good, bad, _ = hooks
    bad.status = 500
    failing = bad.url.replace("json://", "json://alerts:s3cret-pass@")
    clock = VirtualClock(NOW)
    add_test_message(engine, clock.now())
    sender = AppriseSender([good.url, failing], secrets=url_secrets([good.url, failing]))
    assert alerts.deliver(engine, sender, clock.now).failed == 1
    clock.advance(120)
    with app_for(engine, clock, TMINUS_NOTIFY=f"{good.url} {failing}") as web:
        log_in(web, "Vi Ewer")
        page = web.get("/", headers=HTML).text
    panel = page[page.index('data-live="alerts"'):page.index("<h2>Latest</h2>")]
    text = " ".join(re.sub(r"<[^>]+>", " ", html.unescape(panel)).split())
    assert ("● Alert #1 not delivered to 1 of 2 destinations: tminus: test message "
            "(1 attempt(s), still being tried)") in text
    assert f"{good.url} : delivered 2m ago" in text
    masked = failing.replace("alerts:s3cret-pass", "[redacted]:[redacted]")
    assert f"{masked} : not delivered (1 attempt(s)): failure: " in text and "error=500" in text
    assert "s3cret-pass" not in page and "Alerts are off" not in text
    with app_for(engine, clock) as web:
        log_in(web, "Vi Ewer")
        assert "Alerts are off: set <code>TMINUS_NOTIFY</code>" in web.get("/", headers=HTML).text
