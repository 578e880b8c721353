"""The people page in a real browser (Playwright driving Debian's Chromium): an admin
gives a person another role and sets a new password for another, with the forms as a
person uses them (a role picked from the list, the password behind "set a new
password"); each change holds at once and is in the activity log under the admin's
name; an admin who sets their own password is told on the login page why they log in
again. The rules themselves (the last admin, CSRF, short passwords) are checked in
tests/test_web.py, without a browser."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, Page, expect
from sqlalchemy.engine import Engine
from sqlmodel import col, select

from scheduler.db import session
from scheduler.models import Activity, Person
from scheduler.settings import Settings
from scheduler.web import create_app
from tests.browser import serving
from tests.webfixtures import PASSWORD, setup


@pytest.fixture
def url(engine: Engine, tmp_path: Path) -> Iterator[str]:
    folder = tmp_path / "camp"
    folder.mkdir()
    setup(engine, folder)       # one person of each role
    app = create_app(engine, Settings.from_env({"TMINUS_WEB_SECRET": "s" * 40}))
    with serving(app) as base:
        yield base


def _log_in(page: Page, url: str, name: str, password: str = PASSWORD) -> None:
    page.goto(f"{url}/login")
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url(f"{url}/")


def test_an_admin_changes_a_role_and_sets_a_password_in_the_page(
        url: str, engine: Engine, browser_context: BrowserContext) -> None:
    page = browser_context.new_page()
    _log_in(page, url, "Ad Min")
    page.goto(f"{url}/people")

    page.get_by_label("role of Ed Itor").select_option("approver")
    page.get_by_role("row", name="Ed Itor").get_by_role("button", name="change role").click()
    expect(page.locator(".flash")).to_have_text("Ed Itor is now an approver.")
    expect(page.get_by_label("role of Ed Itor")).to_have_value("approver")

    row = page.get_by_role("row", name="Vi Ewer")
    row.get_by_text("set a new password").click()       # opens the <details>
    row.get_by_label("New password for Vi Ewer").fill("a brand new phrase")
    row.get_by_role("button", name="Set password").click()
    expect(page.locator(".flash")).to_contain_text("New password set for Vi Ewer")

    theirs = browser_context.browser
    assert theirs is not None
    other = theirs.new_context().new_page()
    _log_in(other, url, "Vi Ewer", "a brand new phrase")
    expect(other.get_by_role("link", name="People")).to_have_count(0)   # still a viewer

    with session(engine) as s:
        roles = {p.name: p.role for p in s.exec(select(Person)).all()}
        log = [(a.kind, a.actor, a.message) for a in s.exec(
            select(Activity).where(col(Activity.kind).in_(["role set", "password set"]))
            .order_by(col(Activity.id))).all()]
    assert roles["Ed Itor"] == "approver" and roles["Vi Ewer"] == "viewer"
    assert log == [("role set", "Ad Min", "made Ed Itor an approver (was an editor)"),
                   ("password set", "Ad Min", "set a new password for Vi Ewer")]
    other.context.close()


def test_an_admin_who_sets_their_own_password_is_told_why_they_log_in_again(
        url: str, browser_context: BrowserContext) -> None:
    """Their session ends with the change: the login page says so, once, and the new
    password is the one that works."""
    page = browser_context.new_page()
    _log_in(page, url, "Ad Min")
    page.goto(f"{url}/people")
    row = page.get_by_role("row", name="Ad Min")
    row.get_by_text("set a new password").click()
    row.get_by_label("New password for Ad Min").fill("my own new phrase")
    row.get_by_role("button", name="Set password").click()
    page.wait_for_url(f"{url}/login")
    expect(page.get_by_role("status")).to_have_text(
        "Your password was changed; log in with the new one.")
    page.reload()                                   # said once, not on every visit
    expect(page.get_by_role("status")).to_have_count(0)
    page.goto(f"{url}/people")                      # the session did end
    page.wait_for_url(f"{url}/login?next=/people")
    page.fill("input[name=name]", "Ad Min")
    page.fill("input[name=password]", PASSWORD)     # the old one
    page.click("button[type=submit]")
    expect(page.get_by_role("alert")).to_be_visible()
    page.fill("input[name=password]", "my own new phrase")
    page.click("button[type=submit]")
    page.wait_for_url(f"{url}/people")
