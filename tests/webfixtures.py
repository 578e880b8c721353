"""What the web tests share: a planned campaign, one person of each role, and logging
in through the login form as a browser would."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy.engine import Engine
from starlette.testclient import TestClient

from scheduler.clock import VirtualClock
from scheduler.planner import plan
from scheduler.service.people import add_person
from scheduler.settings import Settings
from scheduler.web import create_app
from tests.conftest import simple_toml

DEADLINE = datetime(2099, 1, 20, 17, 0, tzinfo=UTC)
NOW = DEADLINE - timedelta(days=4)
PASSWORD = "a long enough password"
PEOPLE = {"Vi Ewer": "viewer", "Ed Itor": "editor", "Ap Prover": "approver", "Ad Min": "admin"}
HTML = {"accept": "text/html"}


def setup(engine: Engine, folder: Path) -> None:
    (folder / "campaign.toml").write_text(simple_toml(), encoding="utf-8")
    plan(engine, folder, now=NOW)
    for name, role in PEOPLE.items():
        add_person(engine, name=name, role=role, password=PASSWORD, by="setup", now=NOW)


def app_for(engine: Engine, clock: VirtualClock, **settings: str) -> TestClient:
    cfg = Settings.from_env({"TMINUS_WEB_SECRET": "s" * 40, **settings})
    # Secure cookies go back only over https: the client speaks it when the app is told so
    scheme = "https" if cfg.web_https else "http"
    return TestClient(create_app(engine, cfg, clock=clock), base_url=f"{scheme}://127.0.0.1")


def csrf_of(html: str) -> str:
    m = re.search(r'name="csrf" value="([^"]+)"', html)
    assert m, "no CSRF field on the page"
    return m.group(1)


def log_in(client: TestClient, name: str, password: str = PASSWORD, *, expect: int = 303) -> str:
    """Log in through the form; returns the page's CSRF token for the session's forms."""
    form = client.get("/login", headers=HTML)
    r = client.post("/login", data={"csrf": csrf_of(form.text), "name": name, "password": password,
                                    "next": "/"}, follow_redirects=False)
    assert r.status_code == expect, r.text[:500]
    if expect != 303:
        return ""
    return csrf_of(client.get("/", headers=HTML).text)
