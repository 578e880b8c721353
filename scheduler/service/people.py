"""People who use the web dashboard: their roles, passwords and logins.

Passwords are stored as Argon2id hashes (`argon2-cffi`). A login is a random token the
browser keeps; the database holds only its SHA-256, so a copy of the database opens no
session, and logging out (or removing the person) ends it at once. Failed logins are
counted in the database per name and per address, so the bound holds across restarts
and across several web workers.
"""

from __future__ import annotations

import functools
import hashlib
import secrets
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, func, select

from content.errors import FieldError, TminusError
from scheduler import defaults
from scheduler.db import session
from scheduler.models import ActivityKind, LoginFailure, Person, Role, WebConfig, WebSession
from scheduler.service.activity import record

if TYPE_CHECKING:
    from argon2 import PasswordHasher

ROLES = tuple(r.value for r in Role)
MAX_NAME = 64
MIN_PASSWORD = 8        # NIST SP 800-63B's floor for a chosen password
MAX_PASSWORD = 1024     # hashing work stays bounded whatever is pasted in


@functools.cache
def _hasher() -> PasswordHasher:
    # argon2-cffi is imported where a password is hashed or checked: `tminus status`
    # (through pauses and activity) imports this module and never needs it
    from argon2 import PasswordHasher
    return PasswordHasher()


# verified against when the name is unknown, so a wrong name costs the time a wrong
# password does (the answer does not tell which names exist)
# (made on first use: an Argon2 hash costs a fifth of a second, and every command imports this)
@functools.cache
def _dummy() -> str:
    return _hasher().hash(secrets.token_hex(16))


class Action(StrEnum):
    VIEW = "view"
    QUEUE = "queue"          # a one-off post, as a draft
    EDIT = "edit"
    CANCEL = "cancel"
    PAUSE = "pause"          # stopping is safe: every editor may
    APPROVE = "approve"      # approving or queueing approved: it goes out
    REVIEW = "review"
    RESUME = "resume"        # resuming makes posts go out: an approver's call
    PEOPLE = "people"


_LEVEL = {Role.VIEWER: 0, Role.EDITOR: 1, Role.APPROVER: 2, Role.ADMIN: 3}
NEEDS: dict[Action, Role] = {
    Action.VIEW: Role.VIEWER,
    Action.QUEUE: Role.EDITOR, Action.EDIT: Role.EDITOR, Action.CANCEL: Role.EDITOR,
    Action.PAUSE: Role.EDITOR,
    Action.APPROVE: Role.APPROVER, Action.REVIEW: Role.APPROVER, Action.RESUME: Role.APPROVER,
    Action.PEOPLE: Role.ADMIN,
}


def may(role: Role | str, action: Action) -> bool:
    """Whether a person of `role` may do `action` (each role may all the one below may)."""
    return _LEVEL[Role(role)] >= _LEVEL[NEEDS[action]]


class NotAllowed(TminusError):
    """The logged-in person's role does not allow what they asked for."""


@dataclass(frozen=True)
class PersonInfo:
    id: int
    name: str
    role: Role
    created_at: datetime
    created_by: str

    def may(self, action: Action) -> bool:
        return may(self.role, action)

    def require(self, action: Action) -> None:
        if not self.may(action):
            raise NotAllowed(f"{self.name} is {_article(self.role)} {self.role}; to {action} "
                             f"needs {_article(NEEDS[action])} {NEEDS[action]} (ask an admin)")


def _article(role: Role) -> str:
    return "an" if role[0] in "aeiou" else "a"


def _info(p: Person) -> PersonInfo:
    assert p.id is not None
    return PersonInfo(p.id, p.name, Role(p.role), p.created_at, p.created_by)


# -- names and roles -----------------------------------------------------------------------


def actor(by: str, field: str = "by") -> str:
    """A person's name as recorded in the event log: one line, printable, not empty."""
    name = " ".join(by.split())
    if not name:
        raise FieldError(field, "needs the name of the person (it is recorded)")
    if len(name) > MAX_NAME:
        raise FieldError(field, f"is {len(name)} characters; a name has at most {MAX_NAME}")
    if any(unicodedata.category(ch)[0] == "C" for ch in name):
        raise FieldError(field, "has a control or invisible character; type the name plainly")
    return name


def _login(name: str) -> str:
    return name.casefold()


def _role(role: str) -> Role:
    try:
        return Role(role.strip().lower())
    except ValueError:
        raise FieldError("role", f"{role!r} is not a role; roles are {', '.join(ROLES)}") from None


# -- people ------------------------------------------------------------------------------


def add_person(engine: Engine, *, name: str, role: str, password: str, by: str,
               now: datetime) -> PersonInfo:
    name, by, r = actor(name, "name"), actor(by), _role(role)
    hashed = _hash_password(password)
    with session(engine) as s:
        if s.exec(select(Person).where(Person.login == _login(name))).first() is not None:
            raise FieldError("name", f"{name!r} already exists; set a new password with "
                             "`tminus users password NAME`, another role with "
                             "`tminus users role NAME ROLE`")
        p = Person(name=name, login=_login(name), role=r, password_hash=hashed, created_at=now,
                   created_by=by)
        s.add(p)
        s.flush()
        record(s, ActivityKind.PERSON_ADDED, actor=by, now=now, message=f"added {name} as {r}")
        return _info(p)


def _hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise FieldError("password", f"has {len(password)} characters; use at least {MIN_PASSWORD}")
    if len(password) > MAX_PASSWORD:
        raise FieldError("password", f"is longer than {MAX_PASSWORD} characters")
    return _hasher().hash(password)


def set_password(engine: Engine, *, name: str, password: str, by: str,
                 now: datetime) -> PersonInfo:
    """A new password for a person (a forgotten one, or one that leaked): every login
    made with the old one ends at once. The last admin can do this too, where removing
    and adding them again is refused."""
    by, hashed = actor(by), _hash_password(password)
    with session(engine) as s:
        p = _person(s, name)
        p.password_hash = hashed
        s.add(p)
        s.execute(sa.delete(WebSession).where(col(WebSession.person_id) == p.id))
        record(s, ActivityKind.PASSWORD_SET, actor=by, now=now,
               message=f"set a new password for {p.name}")
        return _info(p)


def set_role(engine: Engine, *, name: str, role: str, by: str, now: datetime) -> PersonInfo:
    """Give a person another role. It holds from their next page (each request reads the
    role), so their logins go on. The last admin keeps the role (make another admin
    first), as with removing them: someone can always manage people from the web."""
    by, r = actor(by), _role(role)
    with session(engine) as s:
        p = _person(s, name)
        was = Role(p.role)
        if r == was:
            return _info(p)
        if was == Role.ADMIN and _admins(s) == 1:
            raise TminusError(f"{p.name} is the last admin and stays one; make another person "
                              "admin first")
        p.role = r
        s.add(p)
        record(s, ActivityKind.ROLE_SET, actor=by, now=now,
               message=f"made {p.name} {_article(r)} {r} (was {_article(was)} {was})")
        return _info(p)


def _admins(s: Session) -> int:
    return int(s.execute(sa.select(func.count()).select_from(Person)
                         .where(col(Person.role) == Role.ADMIN)).scalar_one())


def _person(s: Session, name: str) -> Person:
    p = s.exec(select(Person).where(Person.login == _login(name.strip()))).first()
    if p is None:
        known = ", ".join(s.exec(select(Person.name).order_by(col(Person.login))).all())
        raise FieldError("name", f"{name!r} is not a person here; people: {known or 'none'}")
    return p


def list_people(engine: Engine) -> list[PersonInfo]:
    with session(engine) as s:
        return [_info(p) for p in s.exec(select(Person).order_by(col(Person.login))).all()]


def remove_person(engine: Engine, *, name: str, by: str, now: datetime) -> PersonInfo:
    """Remove a person; their logins end at once. The last admin stays (add another
    first), so that someone can always manage people from the web."""
    by = actor(by)
    with session(engine) as s:
        p = _person(s, name)
        if p.role == Role.ADMIN and _admins(s) == 1:
            raise TminusError(f"{p.name} is the last admin; add another admin first")
        info = _info(p)
        s.execute(sa.delete(WebSession).where(col(WebSession.person_id) == p.id))
        s.delete(p)
        record(s, ActivityKind.PERSON_REMOVED, actor=by, now=now,
               message=f"removed {info.name} ({info.role})")
        return info


# -- logging in ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Login:
    token: str              # for the browser's cookie; never stored
    person: PersonInfo
    expires_at: datetime


class LoginRefused(TminusError):
    """Wrong name or password, or too many failures: one message for all, so the page
    does not tell which names exist."""


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def log_in(engine: Engine, *, name: str, password: str, address: str, now: datetime) -> Login:
    """Check a name and password; a new session on success. Refused while the name or
    the address has had too many failures within the throttle window."""
    login, address = _login(" ".join(name.split()))[:MAX_NAME], address[:64]
    window = now - timedelta(seconds=defaults.LOGIN_WINDOW_SECONDS)
    with session(engine) as s:
        s.execute(sa.delete(LoginFailure).where(col(LoginFailure.at) < window))
        s.execute(sa.delete(WebSession).where(col(WebSession.expires_at) <= now))
        by_name, by_address = (s.execute(sa.select(func.count()).select_from(LoginFailure).where(
            where, col(LoginFailure.at) >= window)).scalar_one()
            for where in (col(LoginFailure.login) == login, col(LoginFailure.address) == address))
    minutes = defaults.LOGIN_WINDOW_SECONDS // 60
    if by_name >= defaults.LOGIN_MAX_PER_NAME or by_address >= defaults.LOGIN_MAX_PER_ADDRESS:
        raise LoginRefused(f"too many failed logins; wait {minutes} minutes and try again")
    with session(engine) as s:
        p = s.exec(select(Person).where(Person.login == login)).first()
    ok = _verify(p.password_hash if p else _dummy(), password[:MAX_PASSWORD]) and p is not None
    if not ok or p is None:
        with session(engine) as s:
            s.add(LoginFailure(at=now, login=login, address=address))
        raise LoginRefused("wrong name or password")
    token = secrets.token_urlsafe(32)
    expires = now + timedelta(seconds=defaults.WEB_SESSION_SECONDS)
    with session(engine) as s:
        s.execute(sa.delete(LoginFailure).where(col(LoginFailure.login) == login,
                                                col(LoginFailure.address) == address))
        s.add(WebSession(token_hash=_hash(token), person_id=p.id or 0, created_at=now,
                         expires_at=expires))
        record(s, ActivityKind.LOGGED_IN, actor=p.name, now=now,
               message=f"logged in to the web dashboard from {address}")
        if _hasher().check_needs_rehash(p.password_hash):
            row = s.get(Person, p.id)
            if row is not None:
                row.password_hash = _hasher().hash(password)
                s.add(row)
    return Login(token, _info(p), expires)


def _verify(hashed: str, password: str) -> bool:
    from argon2.exceptions import InvalidHashError, VerificationError
    try:
        return _hasher().verify(hashed, password)
    except (VerificationError, InvalidHashError):
        return False


def session_person(engine: Engine, token: str, *, now: datetime) -> PersonInfo | None:
    """The person a session token belongs to, while the session lasts."""
    with session(engine) as s:
        row = s.execute(sa.select(Person).join(WebSession, col(WebSession.person_id) == Person.id)
                        .where(col(WebSession.token_hash) == _hash(token),
                               col(WebSession.expires_at) > now)).scalar_one_or_none()
        return _info(row) if row is not None else None


def log_out(engine: Engine, token: str) -> None:
    with session(engine) as s:
        s.execute(sa.delete(WebSession).where(col(WebSession.token_hash) == _hash(token)))


def web_secret(engine: Engine, configured: str | None) -> str:
    """The key that signs session cookies: TMINUS_WEB_SECRET when set, else one made on
    first use and kept in the database, so every web worker and restart shares it."""
    if configured:
        return configured
    for _ in range(2):
        try:
            with session(engine) as s:
                row = s.get(WebConfig, "session_secret")
                if row is None:
                    row = WebConfig(key="session_secret", value=secrets.token_urlsafe(48))
                    s.add(row)
                return row.value
        except sa.exc.IntegrityError:
            continue  # another worker made it at the same moment: read theirs
    raise TminusError("could not keep the web session secret in the database")
