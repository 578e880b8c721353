"""The web dashboard in-process (Starlette's TestClient): nothing without a login, the
CSRF token on every form, roles, the login throttle, approval of exactly what was
shown, and each action recorded under the logged-in person's name."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import col, select
from starlette.routing import Mount, Route
from starlette.testclient import TestClient

from scheduler.clock import VirtualClock
from scheduler.db import session
from scheduler.models import Account, Activity, Event, Pause, Person, Post, PostState
from scheduler.service import approve
from scheduler.service.edits import edit_post
from scheduler.service.people import _hasher as production_hasher  # bound before conftest's
from scheduler.service.people import remove_person
from scheduler.service.status import status
from tests.webfixtures import HTML, NOW, PASSWORD, app_for, csrf_of, log_in, setup

S = PostState


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(NOW)


@pytest.fixture
def web(engine: Engine, tmp_path: Path, clock: VirtualClock) -> Iterator[TestClient]:
    folder = tmp_path / "camp"
    folder.mkdir()
    setup(engine, folder)
    with app_for(engine, clock) as client:
        yield client


def _drafts(engine: Engine) -> list[Post]:
    with session(engine) as s:
        return list(s.exec(select(Post).where(Post.state == S.DRAFT).order_by(col(Post.id))).all())


def _state(engine: Engine, post_id: int) -> PostState:
    with session(engine) as s:
        p = s.get(Post, post_id)
        assert p is not None
        return p.state


def _last_event(engine: Engine, post_id: int) -> Event:
    with session(engine) as s:
        e = s.exec(select(Event).where(Event.post_id == post_id).order_by(col(Event.id).desc())).first()
        assert e is not None
        return e


def _sheet(web: TestClient, *ids: int) -> tuple[str, str]:
    """The approval page for these posts: (its CSRF token, its digest)."""
    page = web.get("/c/testcamp/approve?" + "&".join(f"post={i}" for i in ids), headers=HTML)
    assert page.status_code == 200
    digest = re.search(r'name="digest" value="([0-9a-f]{64})"', page.text)
    assert digest
    return csrf_of(page.text), digest.group(1)


# -- nothing without a login ------------------------------------------------------------------


def test_every_page_but_login_health_and_static_needs_a_login(web: TestClient) -> None:
    app = web.app
    paths: list[tuple[str, str]] = []
    for route in app.routes:  # type: ignore[attr-defined]
        if isinstance(route, Mount):
            continue
        assert isinstance(route, Route)
        path = route.path.replace("{slug}", "testcamp").replace("{id:int}", "1").replace("{n:int}", "0")
        paths += [(m, path) for m in sorted(route.methods or []) if m != "HEAD"]
    open_paths = {("GET", "/healthz"), ("GET", "/login"), ("POST", "/login"),
                  # for machines (tests/test_health.py): readiness, metrics, the calendar feed
                  ("GET", "/readyz"), ("GET", "/metrics"), ("GET", "/calendar/{token}.ics")}
    assert len(paths) > 20
    for method, path in paths:
        if (method, path) in open_paths:
            continue
        r = web.request(method, path, headers=HTML, follow_redirects=False)
        if method == "GET":
            assert r.status_code == 303 and r.headers["location"].startswith("/login?next="), path
        else:
            assert r.status_code == 401, (method, path)
        api = web.request(method, path, headers={"accept": "application/json"}, follow_redirects=False)
        assert api.status_code == 401 and api.json() == {"error": "log in first"}, path
    assert web.get("/healthz").text == "ok"
    assert web.get("/static/tminus.css").status_code == 200
    assert "Log in" in web.get("/", headers=HTML).text            # followed to the login page
    r = web.get("/c/testcamp/timeline?state=draft", headers=HTML, follow_redirects=False)
    assert r.headers["location"] == "/login?next=/c/testcamp/timeline%3Fstate%3Ddraft"


def test_logging_in_sets_a_safe_cookie_and_goes_back_where_you_were(
        engine: Engine, tmp_path: Path, clock: VirtualClock) -> None:
    (tmp_path / "camp").mkdir()
    setup(engine, tmp_path / "camp")
    with app_for(engine, clock, TMINUS_WEB_URL="https://tminus.example.org") as web:
        form = web.get("/login?next=/c/testcamp/audit", headers=HTML)
        assert 'name="next" value="/c/testcamp/audit"' in form.text
        r = web.post("/login", data={"csrf": csrf_of(form.text), "name": "ap prover",  # any case
                                     "password": PASSWORD, "next": "/c/testcamp/audit"},
                     follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/c/testcamp/audit"
        cookie = next(v for k, v in r.headers.multi_items()
                      if k == "set-cookie" and v.startswith("tminus_session="))
        assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Secure" in cookie
        assert PASSWORD not in cookie
        assert r.headers["strict-transport-security"] == "max-age=31536000"
    # another site's address is never where a login sends you
    with app_for(engine, clock) as web:
        form = web.get("/login", headers=HTML)
        r = web.post("/login", data={"csrf": csrf_of(form.text), "name": "Vi Ewer",
                                     "password": PASSWORD, "next": "//evil.example/x"},
                     follow_redirects=False)
        assert r.headers["location"] == "/"
        assert "Secure" not in r.headers["set-cookie"]


def test_pages_carry_a_strict_content_policy(web: TestClient) -> None:
    log_in(web, "Vi Ewer")
    r = web.get("/c/testcamp/timeline", headers=HTML)
    assert r.status_code == 200
    assert "script-src 'self'" in r.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
    assert r.headers["x-content-type-options"] == "nosniff"
    assert "<script>" not in r.text and "http" not in re.sub(r'href="[^"]*"', "", r.text).split("<main>")[0]


# -- CSRF ---------------------------------------------------------------------------------------


def test_a_form_without_its_csrf_token_is_refused_and_changes_nothing(
        web: TestClient, engine: Engine) -> None:
    log_in(web, "Ap Prover")
    post_id = _drafts(engine)[0].id
    assert post_id is not None
    token, digest = _sheet(web, post_id)
    for bad in ({}, {"csrf": "0" * 64}, {"csrf": token[:-1] + ("0" if token[-1] != "0" else "1")}):
        r = web.post("/c/testcamp/approve", data={"post": str(post_id), "digest": digest, **bad},
                     headers=HTML)
        assert r.status_code == 403 and "not sent from a tminus page" in r.text
        assert _state(engine, post_id) == S.DRAFT
    r = web.post("/c/testcamp/approve", data={"post": str(post_id), "digest": digest, "csrf": token},
                 headers=HTML, follow_redirects=False)
    assert r.status_code == 303 and _state(engine, post_id) == S.QUEUED


def test_a_token_from_another_session_is_refused(
        web: TestClient, engine: Engine, clock: VirtualClock) -> None:
    log_in(web, "Ap Prover")
    post_id = _drafts(engine)[0].id
    assert post_id is not None
    _, digest = _sheet(web, post_id)
    with app_for(engine, clock) as other:
        foreign = log_in(other, "Ap Prover")        # the same person, another browser
    r = web.post("/c/testcamp/approve", data={"post": str(post_id), "digest": digest, "csrf": foreign},
                 headers=HTML)
    assert r.status_code == 403 and _state(engine, post_id) == S.DRAFT


def test_the_login_form_needs_its_own_token(web: TestClient) -> None:
    r = web.post("/login", data={"name": "Ad Min", "password": PASSWORD}, headers=HTML)
    assert r.status_code == 403 and "out of date" in r.text
    assert "tminus_session" not in r.headers.get("set-cookie", "")


# -- roles ----------------------------------------------------------------------------------------


def test_a_viewer_sees_but_cannot_approve_edit_pause_or_manage_people(
        web: TestClient, engine: Engine) -> None:
    token = log_in(web, "Vi Ewer")
    post_id = _drafts(engine)[0].id
    assert post_id is not None
    _, digest = _sheet(web, post_id)
    page = web.get(f"/c/testcamp/approve?post={post_id}", headers=HTML).text
    assert "Only an approver can approve; you are viewer" in page
    r = web.post("/c/testcamp/approve", data={"post": str(post_id), "digest": digest, "csrf": token},
                 headers=HTML)
    assert r.status_code == 403 and "Vi Ewer is a viewer; to approve needs an approver" in r.text
    assert _state(engine, post_id) == S.DRAFT
    assert web.post(f"/posts/{post_id}/edit", data={"text": "x", "csrf": token}).status_code == 403
    assert web.post("/pause", data={"what": "all", "reason": "x", "confirm": "yes",
                                    "csrf": token}).status_code == 403
    assert web.get("/people", headers=HTML).status_code == 403
    assert web.get("/c/testcamp/timeline", headers=HTML).status_code == 200
    assert "Pause posting" not in web.get("/", headers=HTML).text


def test_an_editor_edits_and_pauses_but_does_not_approve_or_resume(
        web: TestClient, engine: Engine) -> None:
    token = log_in(web, "Ed Itor")
    post = _drafts(engine)[0]
    assert post.id is not None
    r = web.post(f"/posts/{post.id}/edit", data={"text": "Fixed the typo. #TestTag", "csrf": token},
                 follow_redirects=False)
    assert r.status_code == 303
    e = _last_event(engine, post.id)
    assert (e.actor, e.from_state, e.to_state) == ("Ed Itor", S.DRAFT, S.DRAFT)
    assert "+Fixed the typo. #TestTag" in e.reason
    _, digest = _sheet(web, post.id)
    assert web.post("/c/testcamp/approve", data={"post": str(post.id), "digest": digest,
                                                 "csrf": token}).status_code == 403
    r = web.post("/pause", data={"what": "all", "reason": "news broke", "confirm": "yes",
                                 "csrf": token}, follow_redirects=False)
    assert r.status_code == 303
    assert "Posting is paused: everything" in web.get("/", headers=HTML).text
    assert web.post("/resume", data={"what": "all", "csrf": token}).status_code == 403


def test_the_approver_is_who_clicked_never_a_form_field(web: TestClient, engine: Engine) -> None:
    token = log_in(web, "Ap Prover")
    post_id = _drafts(engine)[0].id
    assert post_id is not None
    _, digest = _sheet(web, post_id)
    r = web.post("/c/testcamp/approve", data={"post": str(post_id), "digest": digest, "csrf": token,
                                              "by": "Somebody Else"}, headers=HTML)
    assert "Approved 1 post(s) as Ap Prover" in r.text       # the message, after the redirect
    with session(engine) as s:
        p = s.get(Post, post_id)
        assert p is not None and p.approved_by == "Ap Prover"
    assert _last_event(engine, post_id).actor == "Ap Prover"
    assert "Approved 1 post(s)" not in web.get("/c/testcamp", headers=HTML).text   # shown once


def test_an_admin_manages_people_and_a_removed_person_is_logged_out_at_once(
        web: TestClient, engine: Engine, clock: VirtualClock) -> None:
    token = log_in(web, "Ad Min")
    r = web.post("/people", data={"name": "New Person", "role": "editor", "password": "short",
                                  "csrf": token}, headers=HTML)
    assert r.status_code == 400 and "has 5 characters; use at least 8" in r.text
    r = web.post("/people", data={"name": "New Person", "role": "editor", "password": PASSWORD,
                                  "csrf": token}, follow_redirects=False)
    assert r.status_code == 303
    with app_for(engine, clock) as theirs:
        log_in(theirs, "New Person")
        assert theirs.get("/", headers=HTML, follow_redirects=False).status_code == 200
        web.post("/people/remove", data={"name": "New Person", "csrf": token})
        r = theirs.get("/", headers=HTML, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"].startswith("/login")


def _role_of(engine: Engine, name: str) -> str:
    with session(engine) as s:
        return s.exec(select(Person.role).where(Person.name == name)).one()


def _activity(engine: Engine, kind: str) -> list[tuple[str, str]]:
    with session(engine) as s:
        return [(a.actor, a.message) for a in s.exec(
            select(Activity).where(Activity.kind == kind).order_by(col(Activity.id))).all()]


def test_an_admin_changes_a_role_with_the_clis_rules(
        web: TestClient, engine: Engine, clock: VirtualClock) -> None:
    with app_for(engine, clock) as theirs:
        log_in(theirs, "Vi Ewer")
        assert theirs.get("/people", headers=HTML).status_code == 403
        token = log_in(web, "Ad Min")
        assert web.post("/people/role", data={"name": "Vi Ewer", "role": "admin"},
                        headers=HTML).status_code == 403                 # no CSRF token
        assert _role_of(engine, "Vi Ewer") == "viewer"
        r = web.post("/people/role", data={"name": "vi ewer", "role": "admin", "csrf": token},
                     headers=HTML)
        assert r.status_code == 200 and "Vi Ewer is now an admin." in r.text
        # it holds from their next page, without logging in again
        assert theirs.get("/people", headers=HTML).status_code == 200
    assert _activity(engine, "role set") == [("Ad Min", "made Vi Ewer an admin (was a viewer)")]
    # two admins now: one may step down; the other, the last admin, may not
    r = web.post("/people/role", data={"name": "Ad Min", "role": "editor", "csrf": token},
                 headers=HTML)
    assert r.status_code == 200 and "You are now an editor" in r.text
    assert web.get("/people", headers=HTML).status_code == 403
    with app_for(engine, clock) as other:
        token = log_in(other, "Vi Ewer")
        r = other.post("/people/role", data={"name": "Vi Ewer", "role": "viewer", "csrf": token},
                       headers=HTML)
        assert r.status_code == 400 and "Vi Ewer is the last admin and stays one" in r.text
        r = other.post("/people/role", data={"name": "Ed Itor", "role": "boss", "csrf": token},
                       headers=HTML)
        assert r.status_code == 400 and "is not a role; roles are viewer" in r.text
    assert _role_of(engine, "Vi Ewer") == "admin" and _role_of(engine, "Ed Itor") == "editor"
    assert len(_activity(engine, "role set")) == 2


def test_an_admin_sets_a_new_password_and_the_old_logins_end(
        web: TestClient, engine: Engine, clock: VirtualClock) -> None:
    token = log_in(web, "Ad Min")
    with app_for(engine, clock) as theirs:
        log_in(theirs, "Ed Itor")
        r = web.post("/people/password", data={"name": "Ed Itor", "password": "short"},
                     headers=HTML)
        assert r.status_code == 403                                       # no CSRF token
        r = web.post("/people/password", data={"name": "Ed Itor", "password": "short",
                                               "csrf": token}, headers=HTML)
        assert r.status_code == 400 and "has 5 characters; use at least 8" in r.text
        assert theirs.get("/", headers=HTML, follow_redirects=False).status_code == 200
        r = web.post("/people/password", data={"name": "Ed Itor", "password": "a new long phrase",
                                               "csrf": token}, headers=HTML)
        assert r.status_code == 200 and "New password set for Ed Itor" in r.text
        assert "a new long phrase" not in r.text
        r = theirs.get("/", headers=HTML, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"].startswith("/login")
        log_in(theirs, "Ed Itor", expect=401)                             # the old one
        log_in(theirs, "Ed Itor", "a new long phrase")
    with session(engine) as s:
        hashed = s.exec(select(Person.password_hash).where(Person.name == "Ed Itor")).one()
    assert hashed.startswith("$argon2id$") and production_hasher().verify(hashed, "a new long phrase")
    assert _activity(engine, "password set") == [("Ad Min", "set a new password for Ed Itor")]
    # an admin's own: their logins end too, and the page says to log in again
    r = web.post("/people/password", data={"name": "Ad Min", "password": "mine, renewed",
                                           "csrf": token}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login"
    said = "Your password was changed; log in with the new one."
    assert said in web.get("/login", headers=HTML).text
    assert said not in web.get("/login", headers=HTML).text        # once
    assert web.get("/", headers=HTML, follow_redirects=False).status_code == 303
    log_in(web, "Ad Min", "mine, renewed")


def test_an_approver_resumes_a_paused_account_from_the_campaign_page(
        web: TestClient, engine: Engine, clock: VirtualClock) -> None:
    with session(engine) as s:
        acc = s.exec(select(Account).where(Account.name == "org")).one()
        acc.paused_reason, acc.paused_at = "the platform refused the login (401)", NOW
        s.add(acc)
    with app_for(engine, clock) as editor:
        token = log_in(editor, "Ed Itor")
        page = editor.get("/c/testcamp", headers=HTML).text
        assert "org</strong> is paused" in page and "Resume org" not in page
        assert "an approver can, or <code>tminus accounts resume org</code>" in page
        r = editor.post("/accounts/resume", data={"name": "org", "csrf": token}, headers=HTML)
        assert r.status_code == 403
    token = log_in(web, "Ap Prover")
    assert "Resume org</button>" in web.get("/c/testcamp", headers=HTML).text
    assert web.post("/accounts/resume", data={"name": "org", "next": "/c/testcamp"},
                    headers=HTML).status_code == 403                      # no CSRF token
    clock.advance(3600)
    r = web.post("/accounts/resume", data={"name": "org", "next": "/c/testcamp", "csrf": token},
                 headers=HTML)
    assert r.status_code == 200 and r.url.path == "/c/testcamp"
    assert "Account org resumed (it was paused 1h: the platform refused the login (401))" in r.text
    assert "org</strong> is paused" not in r.text
    with session(engine) as s:
        assert s.exec(select(Account.paused_reason).where(Account.name == "org")).one() is None
    assert _activity(engine, "account resumed") == [
        ("Ap Prover", "resumed account org (paused 1h: the platform refused the login (401))")]
    r = web.post("/accounts/resume", data={"name": "org", "next": "//evil.example", "csrf": token},
                 headers=HTML)
    assert "Account org was not paused; nothing changed." in r.text and r.url.path == "/"


def test_logins_are_in_the_activity_log_with_who_and_from_where(
        web: TestClient, engine: Engine) -> None:
    log_in(web, "Vi Ewer")
    log_in(web, "Vi Ewer", "wrong password", expect=401)
    assert _activity(engine, "logged in") == [
        ("Vi Ewer", "logged in to the web dashboard from testclient")]
    assert "logged in" in web.get("/c/testcamp/audit", headers=HTML).text
    # the short "latest" lists keep to what changed: a morning's logins push nothing out
    assert not any(a.kind == "logged in" for a in status(engine, now=NOW).activity)


# -- sessions and the login throttle -------------------------------------------------------


def test_logging_out_ends_the_session_even_for_a_copied_cookie(
        web: TestClient, engine: Engine, clock: VirtualClock) -> None:
    token = log_in(web, "Vi Ewer")
    copied = web.cookies.get("tminus_session")
    assert copied
    web.post("/logout", data={"csrf": token})
    with app_for(engine, clock) as thief:
        thief.cookies.set("tminus_session", copied)
        assert thief.get("/", headers=HTML, follow_redirects=False).status_code == 303


def test_passwords_are_stored_as_argon2id_at_rfc_9106s_low_memory_cost() -> None:
    """The production hasher (the other tests hash at argon2's cheapest, conftest.py):
    Argon2id, 64 MiB, 3 passes, 4 lanes, and a hash it made verifies."""
    hashed = production_hasher().hash(PASSWORD)
    assert hashed.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    assert production_hasher().verify(hashed, PASSWORD)
    assert not production_hasher().check_needs_rehash(hashed)


def test_failed_logins_are_bounded_per_name_and_across_restarts(
        web: TestClient, engine: Engine, clock: VirtualClock) -> None:
    for _ in range(5):
        log_in(web, "Ad Min", "wrong password", expect=401)
    form = web.get("/login", headers=HTML)
    r = web.post("/login", data={"csrf": csrf_of(form.text), "name": "Ad Min", "password": PASSWORD})
    assert r.status_code == 401 and "too many failed logins; wait 15 minutes" in r.text
    with app_for(engine, clock) as restarted:          # a new process, the same database
        log_in(restarted, "ad min", expect=401)
        log_in(restarted, "Vi Ewer")                   # other names are not locked out
    clock.advance(16 * 60)
    log_in(web, "Ad Min")


def test_failed_logins_are_bounded_per_address(web: TestClient, clock: VirtualClock) -> None:
    for i in range(20):
        log_in(web, f"guess{i}", "wrong password", expect=401)
    form = web.get("/login", headers=HTML)
    r = web.post("/login", data={"csrf": csrf_of(form.text), "name": "Vi Ewer", "password": PASSWORD})
    assert r.status_code == 401 and "too many failed logins" in r.text
    clock.advance(16 * 60)
    log_in(web, "Vi Ewer")


def test_a_wrong_name_and_a_wrong_password_read_the_same(web: TestClient) -> None:
    form = web.get("/login", headers=HTML)
    a = web.post("/login", data={"csrf": csrf_of(form.text), "name": "Nobody", "password": PASSWORD})
    form = web.get("/login", headers=HTML)
    b = web.post("/login", data={"csrf": csrf_of(form.text), "name": "Vi Ewer", "password": "nope nope"})
    assert a.status_code == b.status_code == 401
    assert "wrong name or password" in a.text and "wrong name or password" in b.text


# -- approving what was shown ------------------------------------------------------------------


def test_approval_fails_if_a_post_changed_since_the_page_was_shown(
        web: TestClient, engine: Engine) -> None:
    token = log_in(web, "Ap Prover")
    ids = [p.id for p in _drafts(engine)[:2] if p.id is not None]
    _, digest = _sheet(web, *ids)
    edit_post(engine, ids[1], "Changed behind your back. #TestTag", by="Ed Itor", now=NOW)
    r = web.post("/c/testcamp/approve", data={"post": [str(i) for i in ids], "digest": digest,
                                              "csrf": token}, headers=HTML)
    assert r.status_code == 409
    assert "something changed since these posts were shown" in r.text
    assert "Changed behind your back." in r.text            # what there is now
    assert all(_state(engine, i) == S.DRAFT for i in ids)
    _, fresh = _sheet(web, *ids)
    r = web.post("/c/testcamp/approve", data={"post": [str(i) for i in ids], "digest": fresh,
                                              "csrf": token}, follow_redirects=False)
    assert r.status_code == 303 and all(_state(engine, i) == S.QUEUED for i in ids)


def test_all_drafts_are_shown_then_approved(web: TestClient, engine: Engine) -> None:
    token = log_in(web, "Ap Prover")
    page = web.get("/c/testcamp/approve?all=1", headers=HTML)
    assert page.text.count('name="post"') == len(_drafts(engine)) == 5
    assert "Approve these 5 posts as Ap Prover" in page.text
    digest = re.search(r'name="digest" value="([0-9a-f]{64})"', page.text)
    assert digest
    ids = re.findall(r'name="post" value="(\d+)"', page.text)
    web.post("/c/testcamp/approve", data={"post": ids, "digest": digest.group(1), "csrf": token})
    assert _drafts(engine) == []


# -- the other actions ---------------------------------------------------------------------------


def test_an_edit_that_breaks_a_rule_is_shown_beside_the_field(web: TestClient, engine: Engine) -> None:
    token = log_in(web, "Ed Itor")
    post = _drafts(engine)[0]
    r = web.post(f"/posts/{post.id}/edit", data={"text": "x" * 300, "csrf": token}, headers=HTML)
    assert r.status_code == 400
    assert 'id="text-error">is 300 weighted chars, over dryrun&#39;s limit of 280' in r.text
    assert "x" * 300 in r.text                              # what they typed is kept
    # a link glued to the campaign's hashtag: saved, and warned about on the post's page
    web.post(f"/posts/{post.id}/edit", data={"text": "Sign https://example.org/owl#TestTag",
                                             "csrf": token})
    page = web.get(f"/posts/{post.id}", headers=HTML).text
    assert "⚠ the link https://example.org/owl runs into #TestTag" in page


def test_a_one_off_post_is_queued_as_the_person(web: TestClient, engine: Engine) -> None:
    token = log_in(web, "Ed Itor")
    r = web.post("/queue", data={"account": "org", "at": "+10m", "text": "A one-off #TestTag",
                                 "campaign": "", "expires": "", "csrf": token}, follow_redirects=False)
    assert r.status_code == 303
    post_id = int(r.headers["location"].rsplit("/", 1)[1])
    assert _state(engine, post_id) == S.DRAFT and _last_event(engine, post_id).actor == "Ed Itor"
    r = web.post("/queue", data={"account": "org", "at": "T+1h", "text": "Too late #TestTag",
                                 "csrf": token}, headers=HTML)
    assert r.status_code == 400 and "is not before the deadline" in r.text
    r = web.post("/queue", data={"account": "org", "at": "+10m", "text": "Approved #TestTag",
                                 "approve": "yes", "csrf": token}, headers=HTML)
    assert r.status_code == 403                              # an editor cannot approve


def test_pause_needs_a_reason_and_a_confirmation_and_resume_reports(
        web: TestClient, engine: Engine) -> None:
    token = log_in(web, "Ap Prover")
    r = web.post("/pause", data={"what": "campaign:testcamp", "reason": "hold", "csrf": token},
                 headers=HTML)
    assert r.status_code == 400 and "tick the box to confirm" in r.text
    r = web.post("/pause", data={"what": "campaign:testcamp", "reason": " ", "confirm": "yes",
                                 "csrf": token}, headers=HTML)
    assert r.status_code == 400 and "is needed: say why" in r.text
    web.post("/pause", data={"what": "campaign:testcamp", "reason": "statement pending",
                             "confirm": "yes", "csrf": token})
    page = web.get("/c/testcamp", headers=HTML).text
    assert "Posting is paused: campaign testcamp" in page and "statement pending" in page
    r = web.post("/resume", data={"what": "campaign:testcamp", "csrf": token}, headers=HTML)
    assert r.status_code == 200 and "Resumed campaign testcamp" in r.text
    assert "Ap Prover: resumed campaign testcamp" in web.get("/", headers=HTML).text


def test_times_on_the_pages_are_in_the_campaign_timezone(web: TestClient, engine: Engine) -> None:
    """The audit trail, a rate-limit wait and what expired during a pause: EST, as the
    terminal shows them (issue 13), not UTC."""
    token = log_in(web, "Ap Prover")
    post = _drafts(engine)[0]
    assert post.id is not None
    approve(engine, campaign="testcamp", post_ids=[], by="Ap Prover", now=NOW)
    with session(engine) as s:
        acc = s.exec(select(Account).where(Account.name == "org")).one()
        acc.resume_at = NOW + timedelta(hours=2)          # 19:00 UTC, 14:00 EST
        s.add(acc)
    page = web.get(f"/posts/{post.id}", headers=HTML).text
    assert "2099-01-16 12:00:00 EST</time>" in page and " UTC</time>" not in page
    campaign = web.get("/c/testcamp", headers=HTML).text
    assert "waits out a rate limit until 14:00:00 EST" in campaign
    web.post("/pause", data={"what": "campaign:testcamp", "reason": "hold", "confirm": "yes",
                             "csrf": token})
    with session(engine) as s:    # paused an hour ago; the post's window ended meanwhile
        pz = s.exec(select(Pause)).one()
        pz.paused_at = NOW - timedelta(hours=1)
        row = s.get(Post, post.id)
        assert row is not None
        row.not_after = NOW - timedelta(minutes=1)
        s.add_all([pz, row])
    r = web.post("/resume", data={"what": "campaign:testcamp", "csrf": token}, headers=HTML)
    assert r.status_code == 200
    due = post.due_at.astimezone(ZoneInfo("America/New_York"))
    assert f"due {due:%Y-%m-%d %H:%M} EST:" in r.text and " UTC:" not in r.text


def test_review_resolves_with_the_evidence_shown(web: TestClient, engine: Engine) -> None:
    token = log_in(web, "Ap Prover")
    post = _drafts(engine)[0]
    assert post.id is not None
    with session(engine) as s:             # as a daemon leaves it when it cannot tell
        row = s.get(Post, post.id)
        assert row is not None
        row.state, row.last_error = S.REVIEW, "could not tell whether it went out: timeout"
        s.add(row)
    page = web.get("/review", headers=HTML).text
    assert "could not tell whether it went out: timeout" in page
    r = web.post(f"/posts/{post.id}/review", data={"resolution": "published", "url": "",
                                                   "csrf": token}, headers=HTML)
    assert r.status_code == 400 and "needs the URL" in r.text
    web.post(f"/posts/{post.id}/review", data={"resolution": "published", "csrf": token,
                                               "url": "https://example.social/@org/1"})
    assert _state(engine, post.id) == S.PUBLISHED
    assert _last_event(engine, post.id).actor == "Ap Prover"


def test_media_are_served_only_for_their_post(
        engine: Engine, tmp_path: Path, clock: VirtualClock) -> None:
    from scheduler.planner import plan
    from scheduler.service.people import add_person
    from tests.conftest import simple_toml
    folder = tmp_path / "media"
    folder.mkdir()
    png = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00"
           b"\x00\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\xff\xff?\x00\x05\xfe\x02\xfe\xa7"
           b"5\x81\x84\x00\x00\x00\x00IEND\xaeB`\x82")
    (folder / "poster.png").write_bytes(png)
    (folder / "campaign.toml").write_text(simple_toml(posts="""
        [[posts]]
        key = "poster"
        text = "See the poster #TestTag"
        accounts = ["org"]
        schedule = { at = "T-1d" }
        media = [{ path = "poster.png", alt = "A poster saying 4 days" }]
    """))
    plan(engine, folder, now=NOW)
    add_person(engine, name="Vi Ewer", role="viewer", password=PASSWORD, by="t", now=NOW)
    with app_for(engine, clock) as web:
        log_in(web, "Vi Ewer")
        page = web.get("/c/testcamp/timeline", headers=HTML).text
        assert 'alt="A poster saying 4 days"' in page and "/posts/1/media/0" in page
        r = web.get("/posts/1/media/0")
        assert r.status_code == 200 and r.content == png and r.headers["content-type"] == "image/png"
        assert web.get("/posts/1/media/1", headers=HTML).status_code == 404
        assert web.get("/posts/99/media/0", headers=HTML).status_code == 404


def test_an_unknown_campaign_or_post_is_a_clear_page(web: TestClient) -> None:
    """Not found, in the page's own words: no command-line advice on a web page."""
    log_in(web, "Vi Ewer")
    r = web.get("/c/nope", headers=HTML)
    assert r.status_code == 404 and "no campaign &#39;nope&#39;; known: testcamp" in r.text
    r = web.get("/posts/999", headers=HTML)
    assert r.status_code == 404 and "no post 999" in r.text and "tminus list" not in r.text


def test_a_session_lasts_a_week(web: TestClient, clock: VirtualClock) -> None:
    log_in(web, "Vi Ewer")
    clock.advance(timedelta(days=6).total_seconds())
    assert web.get("/", headers=HTML, follow_redirects=False).status_code == 200
    clock.advance(timedelta(days=1, seconds=1).total_seconds())
    assert web.get("/", headers=HTML, follow_redirects=False).status_code == 303


def test_removing_a_person_by_the_service_ends_their_session(
        web: TestClient, engine: Engine) -> None:
    log_in(web, "Vi Ewer")
    remove_person(engine, name="Vi Ewer", by="Ad Min", now=NOW)
    assert web.get("/", headers=HTML, follow_redirects=False).status_code == 303


def test_an_id_too_large_for_the_database_is_a_clear_page(web: TestClient) -> None:
    token = log_in(web, "Ap Prover")
    huge = str(2**64)
    assert "no post" in web.get(f"/posts/{huge}", headers=HTML).text
    assert web.get(f"/posts/{huge}", headers=HTML).status_code == 404
    r = web.get(f"/c/testcamp/approve?post={huge}", headers=HTML)
    assert r.status_code == 400 and "no such post" in r.text
    r = web.post("/c/testcamp/approve", data={"post": huge, "digest": "x", "csrf": token}, headers=HTML)
    assert r.status_code == 400 and "no such post" in r.text


def test_every_page_and_the_main_actions_on_both_databases(
        any_engine: Engine, tmp_path: Path, clock: VirtualClock) -> None:
    folder = tmp_path / "camp"
    folder.mkdir()
    setup(any_engine, folder)
    with app_for(any_engine, clock) as web:
        token = log_in(web, "Ap Prover")
        post_id = _drafts(any_engine)[0].id
        for path in ("/", "/c/testcamp", "/c/testcamp/timeline?language=en&platform=dryrun",
                     "/c/testcamp/approve", "/c/testcamp/audit", f"/posts/{post_id}",
                     f"/posts/{post_id}/edit", "/review", "/queue", "/pause"):
            assert web.get(path, headers=HTML).status_code == 200, path
        assert post_id is not None
        _, digest = _sheet(web, post_id)
        web.post("/c/testcamp/approve", data={"post": str(post_id), "digest": digest, "csrf": token})
        assert _state(any_engine, post_id) == S.QUEUED
        web.post("/pause", data={"what": "all", "reason": "hold", "confirm": "yes", "csrf": token})
        r = web.post("/resume", data={"what": "all", "csrf": token}, headers=HTML)
        assert "Resumed everything" in r.text


def test_a_dry_run_account_is_not_waiting_for_a_handle_check(web: TestClient) -> None:
    """`tminus accounts check` has nothing to verify for a dryrun account: the timeline
    says it posts nowhere instead of "handle not checked yet", a to-do nobody can do."""
    log_in(web, "Vi Ewer")
    page = web.get("/c/testcamp/timeline", headers=HTML).text
    assert "dry run: nothing is posted" in page and "handle not checked yet" not in page
