"""The dashboard in a real browser (Playwright driving Debian's Chromium), on a web
server started by the test and the real daemon running as a subprocess, posting with
the real SDKs to the project's fake X, Mastodon and Bluesky: log in, see the countdown tick, approve a draft and watch it go out,
edit a post back to draft, pause everything and see nothing go out, resume; a viewer
cannot approve; a request without the CSRF token is refused; no login, no page.
Screenshots of the overview and the timeline at desktop and phone widths go to
tests/artifacts/ (not committed) for a person to look at."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy.engine import Engine
from sqlmodel import select

from content.countdown import time_left
from scheduler.db import make_engine, session, upgrade
from scheduler.models import Account, Daemon, Post, PostState
from scheduler.planner import plan
from scheduler.service.people import add_person
from scheduler.settings import Settings
from scheduler.web import create_app
from tests.browser import ARTIFACTS, serving
from tests.fakeplatform import FakePlatformServer
from tests.fakeplatform import bluesky as fb
from tests.fakeplatform import mastodon as fm
from tests.fakeplatform import x as fx

pytestmark = pytest.mark.slow
S = PostState
TMINUS = str(Path(sys.executable).parent / "tminus")
PASSWORD = "a long enough password"


def _campaign(folder: Path, deadline: datetime, first: datetime) -> None:
    folder.mkdir()
    (folder / "campaign.toml").write_text(f"""
[campaign]
slug = "live"
title = "Keep the library open"
deadline = {deadline.isoformat()}
timezone = "America/Chicago"
hashtags = ["#KeepItOpen"]

[accounts.org_x]
platform = "x"
credentials = "ORG_X"

[accounts.org_masto]
platform = "mastodon"
credentials = "ORG_MASTO"

[accounts.org_bsky]
platform = "bluesky"
credentials = "ORG_BSKY"

[[posts]]
key = "first"
text = "{{{{ time_left }}}} left to save the library: call 312-555-0100. #KeepItOpen https://example.org/library"
accounts = ["org_x"]
schedule = {{ at = {first.isoformat()} }}

[[posts]]
key = "later"
text = "Still {{{{ time_left }}}}. Write to @alderman. #KeepItOpen"
accounts = ["org_x", "org_masto", "org_bsky"]
schedule = {{ at = "T-20m" }}
thread = ["Why it matters: 40,000 visits a year."]
""", encoding="utf-8")


def _state(engine: Engine, post_id: int) -> PostState:
    with session(engine) as s:
        p = s.get(Post, post_id)
        assert p is not None
        return p.state


def _post_id(engine: Engine, key: str, account: str | None = None) -> int:
    with session(engine) as s:
        for p in s.exec(select(Post).where(Post.post_key == key).order_by(Post.id)).all():  # type: ignore[arg-type]
            if account is None or account in p.plan_key:
                assert p.id is not None
                return p.id
    raise AssertionError(key)


def _until(what: Callable[[], bool], timeout: float, why: str) -> None:
    """Poll a condition on the real daemon (a separate process on the real clock)."""
    deadline = time.monotonic() + timeout
    while not what():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting until {why}")
        time.sleep(0.2)


def _on_x(fake: FakePlatformServer) -> list[str]:
    """The texts of the tweets that reached the fake X."""
    return [str(r.json().get("text")) for r in fake.requests_to("POST", r"^/2/tweets$")]


def _text(engine: Engine, post_id: int) -> str:
    with session(engine) as s:
        post = s.get(Post, post_id)
        assert post is not None
        return post.text


def _log_in(page: Page, url: str, name: str) -> None:
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[str, Engine, FakePlatformServer]]:
    """A campaign planned in a fresh SQLite file, two people, the web server on a free
    port, the fake platforms, and `tminus run` on the same database posting to them."""
    db = f"sqlite:///{tmp_path}/tminus.db"
    engine = make_engine(db)
    upgrade(engine)
    now = datetime.now(UTC).replace(microsecond=0)
    _campaign(tmp_path / "live", now + timedelta(minutes=40), now + timedelta(seconds=25))
    plan(engine, tmp_path / "live", now=now)
    with session(engine) as s:      # who each account posts as, as `tminus accounts check` finds
        for acc in s.exec(select(Account)).all():
            acc.handle = {"x": "LibraryFriends", "mastodon": "@friends@library.social",
                          "bluesky": "friends.library.org"}[acc.platform]
            s.add(acc)
    add_person(engine, name="Ana Ruiz", role="approver", password=PASSWORD, by="test", now=now)
    add_person(engine, name="Vi Ewer", role="viewer", password=PASSWORD, by="test", now=now)
    fake = FakePlatformServer()
    fake.start()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TMINUS_")}
    env.update(TMINUS_DATABASE_URL=db, TMINUS_POLL_SECONDS="0.5",
               TMINUS_ORG_X_API_KEY="k", TMINUS_ORG_X_API_SECRET="s",
               TMINUS_ORG_X_ACCESS_TOKEN=fx.VALID_TOKEN, TMINUS_ORG_X_ACCESS_SECRET="a",
               TMINUS_ORG_X_API_BASE=fake.url,
               TMINUS_ORG_MASTO_INSTANCE=fake.url, TMINUS_ORG_MASTO_ACCESS_TOKEN=fm.TOKEN,
               TMINUS_ORG_BSKY_HANDLE=fb.HANDLE, TMINUS_ORG_BSKY_APP_PASSWORD=fb.PASSWORD,
               TMINUS_ORG_BSKY_PDS=fake.url)
    daemon = subprocess.Popen([TMINUS, "run"], env=env, cwd=tmp_path, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    app = create_app(engine, Settings(database_url=db))
    try:
        with serving(app) as url:
            yield url, engine, fake
    finally:
        fake.stop()
        daemon.send_signal(signal.SIGTERM)
        try:
            out, _ = daemon.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            daemon.kill()
            out, _ = daemon.communicate()
        assert daemon.returncode == 0, out[-3000:]
        engine.dispose()


def test_the_dashboard_end_to_end(world: tuple[str, Engine, FakePlatformServer],
                                  chromium: Browser) -> None:
    url, engine, fake = world
    first = _post_id(engine, "first")
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()

    # no login, no page: the login page, and back to where you were after it
    page.goto(f"{url}/c/live")
    assert "/login?next=/c/live" in page.url
    expect(page.locator("h1")).to_have_text("Log in")
    _log_in(page, url, "Ana Ruiz")
    page.wait_for_url(f"{url}/c/live")
    expect(page.locator(".campaign-title h1")).to_have_text("Keep the library open")

    # the countdown ticks in the page, in the campaign's words (a window of its own: a
    # page refreshes itself only while it is visible)
    ticking = chromium.new_context(storage_state=context.storage_state()).new_page()
    t0 = datetime.now(UTC)
    ticking.clock.install(time=t0)
    ticking.clock.pause_at(t0 + timedelta(seconds=1))
    ticking.goto(f"{url}/c/live")
    server_now = datetime.fromisoformat(ticking.locator("body").get_attribute("data-now") or "")
    deadline = datetime.fromisoformat(ticking.locator("[data-countdown]").first
                                      .get_attribute("data-countdown") or "")
    # the page's live refresh sets its clock to the server's real one again (as it
    # should): kept out here, so that the countdown's own ticking is what is seen
    ticking.route(f"{url}/c/live", lambda route: route.abort()
                  if route.request.headers.get("x-tminus-live") else route.continue_())
    ticking.clock.run_for(2_000)
    countdown = ticking.locator(".countdown .left")
    expect(countdown).to_have_text(time_left(server_now + timedelta(seconds=2), deadline))
    ticking.clock.run_for(61_000)
    expect(countdown).to_have_text(time_left(server_now + timedelta(seconds=63), deadline))
    assert re.fullmatch(r"3[89] minutes \d+ seconds", countdown.inner_text())
    ticking.context.close()

    # approve one draft: choose it, see exactly it with its digest, approve
    page.goto(f"{url}/c/live/approve")
    page.check(f'input[name=post][value="{first}"]')
    page.click("text=Show what I chose")
    sheet = page.locator("article.card")
    expect(sheet).to_have_count(1)
    expect(page.locator(".digest code")).to_have_text(re.compile(r"^[0-9a-f]{12}$"))
    page.click("text=Approve these 1 post as Ana Ruiz")
    expect(page.locator(".flash")).to_have_text("Approved 1 post(s) as Ana Ruiz.")
    assert _state(engine, first) == S.QUEUED

    # ... and watch it go out: the post's page refreshes itself
    page.goto(f"{url}/posts/{first}")
    expect(page.locator(f'article[data-post="{first}"][data-state="published"]')).to_be_visible(
        timeout=60_000)
    assert _on_x(fake) == [_text(engine, first)]
    expect(page.locator("ol.events")).to_contain_text("approved by Ana Ruiz")

    # edit a queued post: it is a draft again, the difference in its trail
    later = _post_id(engine, "later", "org_masto")
    page.goto(f"{url}/c/live/approve?post={later}")
    page.click("text=Approve these 1 post as Ana Ruiz")
    assert _state(engine, later) == S.QUEUED
    page.goto(f"{url}/posts/{later}")
    page.click("text=Edit the text")
    page.fill("textarea[name=text]", "Still time. Write to @alderman today. #KeepItOpen")
    page.click("button:text('Save')")
    expect(page.locator(".flash")).to_contain_text("is a draft again")
    expect(page.locator(f'article[data-post="{later}"]')).to_have_attribute("data-state", "draft")
    expect(page.locator("ol.events")).to_contain_text("+Still time. Write to @alderman today.")
    assert _state(engine, later) == S.DRAFT

    # pause everything; a post falling due meanwhile does not go out; resume sends it
    page.click("text=Pause posting")
    page.fill("input[name=reason]", "breaking news: hold until we have a statement")
    page.check("input[name=confirm]")
    page.click("button:text('Pause now')")
    expect(page.locator(".paused-banner")).to_contain_text("Posting is paused: everything")
    page.goto(f"{url}/queue")
    page.select_option("select[name=account]", "org_masto")
    page.fill("input[name=at]", "+2s")
    page.fill("textarea[name=text]", "A one-off while paused. #KeepItOpen")
    page.check("input[name=approve]")
    page.click("button:text('Queue it')")
    expect(page.locator(".flash")).to_contain_text("is approved and queued")
    held = int(page.url.rsplit("/", 1)[1])
    with session(engine) as s:
        due = s.get(Post, held).due_at  # type: ignore[union-attr]

    def daemon_looked_after_due() -> bool:
        with session(engine) as s:
            return any(d.beat_at > due + timedelta(seconds=1) for d in s.exec(select(Daemon)).all())

    _until(daemon_looked_after_due, 30, "the daemon has run past the held post's time")
    assert _state(engine, held) == S.QUEUED
    assert _text(engine, held) not in _on_x(fake)
    page.goto(f"{url}/")
    page.click("text=Resume everything")
    expect(page.locator("h1")).to_have_text("Resumed everything")
    expect(page.locator(".big-numbers")).to_contain_text("1 going out now")
    _until(lambda: _state(engine, held) == S.PUBLISHED, 30, "the held post went out")

    # a request without the CSRF token is refused, and changes nothing
    draft = _post_id(engine, "later", "org_x")
    refused = context.request.post(f"{url}/c/live/approve", form={"post": str(draft), "digest": "0"})
    assert refused.status == 403 and _state(engine, draft) == S.DRAFT

    # a viewer sees the sheet but cannot approve, not even with a hand-made request
    viewer = chromium.new_context().new_page()
    viewer.goto(f"{url}/c/live/approve?post={draft}")
    _log_in(viewer, url, "Vi Ewer")
    expect(viewer.locator(".sticky-actions")).to_contain_text("Only an approver can approve")
    expect(viewer.locator("text=Approve these")).to_have_count(0)
    csrf = viewer.locator("input[name=csrf]").first.get_attribute("value") or ""
    digest = viewer.locator("input[name=digest]").get_attribute("value") or ""
    forged = viewer.request.post(f"{url}/c/live/approve",
                                 form={"post": str(draft), "digest": digest, "csrf": csrf})
    assert forged.status == 403 and _state(engine, draft) == S.DRAFT
    viewer.context.close()

    # screenshots for a person to look at
    ARTIFACTS.mkdir(exist_ok=True)
    for width in (1280, 390):
        shot = chromium.new_context(viewport={"width": width, "height": 900}, storage_state=context.storage_state())
        p = shot.new_page()
        for name, path in (("overview", "/c/live"), ("timeline", "/c/live/timeline")):
            p.goto(url + path)
            p.screenshot(path=str(ARTIFACTS / f"{name}-{width}.png"), full_page=True)
            assert (ARTIFACTS / f"{name}-{width}.png").stat().st_size > 10_000
        shot.close()
    context.close()
