"""The post state machine, and the one write path that changes a post's state.

```
draft ──approve──▶ queued ──claim──▶ sending ──ok──────────▶ published
  ▲                  ▲  │               ├──transient──▶ queued (next_attempt_at = backoff)
  │  text changed    │  │               ├──permanent──▶ failed
  └──────────────────┘  │               ├──past not_after at send time──▶ expired
                        │               ├──unknown────▶ unknown ──reconcile──▶ published | queued | review
                        │               └──not what was approved (checked before the request)──▶ draft
                        └──not_after passed──▶ expired            (a draft past not_after expires too)
any state before sending ──cancel──▶ canceled ──back in the campaign file──▶ draft
```

Every change of state — a person's approve, cancel or review, a re-plan, a daemon's
claim, record, expiry, reaping and reconciliation — goes through `change()`. It checks
the move is allowed, applies it only to posts still as they were read (the fence:
state, and attempt and lease owner where the caller read them), writes one `event` row
per post that moved, and wakes the daemons when a person made a post due. One UPDATE
per chunk of posts, so a campaign of 100,000 is approved in a few statements.
"""

from __future__ import annotations

import functools
import json
import operator
import secrets
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy import insert, update

from content.errors import TminusError
from scheduler import tables
from scheduler.db import connection_of
from scheduler.notify import wake
from scheduler.sqltypes import UTCDateTime
from scheduler.states import PostState

if TYPE_CHECKING:   # the daemon runs on Core: only a command's `transition` has the ORM
    from sqlmodel import Session

    from scheduler.db import Bind
    from scheduler.models import Post

S = PostState
ALLOWED: dict[PostState, frozenset[PostState]] = {
    S.DRAFT: frozenset({S.QUEUED, S.CANCELED, S.EXPIRED}),
    S.QUEUED: frozenset({S.SENDING, S.DRAFT, S.EXPIRED, S.CANCELED}),
    S.SENDING: frozenset({S.PUBLISHED, S.QUEUED, S.FAILED, S.UNKNOWN, S.EXPIRED, S.DRAFT}),
    S.UNKNOWN: frozenset({S.PUBLISHED, S.QUEUED, S.REVIEW, S.EXPIRED}),
    S.REVIEW: frozenset({S.PUBLISHED, S.QUEUED, S.CANCELED}),
    S.CANCELED: frozenset({S.DRAFT}),      # a post put back into the campaign file
    S.PUBLISHED: frozenset(),
    S.FAILED: frozenset(),
    S.EXPIRED: frozenset(),
}
# A person made these posts due: the daemons are woken. (A daemon's own moves to queued
# are retries with a later next_attempt_at, or a reconciliation it acts on itself.)
_WAKES = frozenset({S.DRAFT, S.REVIEW})
_CHUNK = 5000
_POST = tables.post
_EVENTS = insert(tables.event)


@dataclass(frozen=True)
class Seen:
    """A post as it was read: its change is conditional on this. `attempt` fences on
    the attempt number too (a daemon recording the outcome of its own attempt)."""

    id: int
    state: PostState
    attempt: int | None = None


def change(s: Bind, posts: Sequence[Seen], to: PostState, *, reason: str | Mapping[int, str],
           now: datetime, actor: str, values: Mapping[str, Any] | None = None,
           each: Mapping[int, Mapping[str, Any]] | None = None, owner: str | None = None,
           strict: bool = True) -> list[int]:
    """Move `posts` to state `to`; returns the ids that moved.

    `values` are set on every post that moves (SQL expressions allowed), `each` per post
    (the same keys for all; an `updated_at` there is also the time of its event).
    `owner` fences on the lease owner as well. A post no longer as it was read is left
    alone: with `strict` that is an error and the caller's transaction is rolled back,
    without it the post is skipped. A move the state machine forbids is always an error.
    `s` is a Connection (the daemon) or a Session (a command: its connection is used)."""
    conn = connection_of(s)
    by_state: dict[PostState, list[Seen]] = {}
    for p in posts:
        by_state.setdefault(PostState(p.state), []).append(p)
    for state in by_state:
        if to not in ALLOWED[state]:
            one = by_state[state][0]
            raise TminusError(f"post {one.id} is {state}; it cannot become {to}")
    moved: list[Seen] = []
    for state, group in by_state.items():
        for i in range(0, len(group), _CHUNK):
            moved.extend(_move(conn, group[i:i + _CHUNK], state, to, now, values or {}, owner))
    if strict and len(moved) != len(posts):
        lost = len(posts) - len(moved)
        what = f"post {posts[0].id}" if len(posts) == 1 else f"{lost} of {len(posts)} posts"
        raise TminusError(f"{what} changed while this command ran; nothing was written — "
                          "look again")
    if not moved:
        return []
    if each:
        rows = [{"b_id": p.id, **each[p.id]} for p in moved]
        conn.execute(_each_statement(tuple(k for k in rows[0] if k != "b_id")), rows)
    conn.execute(_EVENTS, [
        {"post_id": p.id, "from_state": p.state, "to_state": to, "actor": actor,
         "at": (each or {}).get(p.id, {}).get("updated_at", now),
         "reason": reason if isinstance(reason, str) else reason[p.id]}
        for p in moved])
    if to == S.QUEUED and any(p.state in _WAKES for p in moved):
        wake(conn)
    return [p.id for p in moved]


def _move(conn: sa.Connection, group: Sequence[Seen], state: PostState, to: PostState, now: datetime,
          values: Mapping[str, Any], owner: str | None) -> list[Seen]:
    fenced = [p for p in group if p.attempt is not None]
    plain = [p for p in group if p.attempt is None]
    params: dict[str, Any] = {"m_ids": [p.id for p in group], "m_from": state, "m_to": to,
                              "m_now": now, "m_owner": owner,
                              "m_plain": [p.id for p in plain],
                              "m_fenced": [(p.id, p.attempt) for p in fenced]}
    params.update((f"v_{k}", v) for k, v in values.items()
                  if not isinstance(v, sa.ClauseElement))
    stmt = _move_statement(owner is not None, bool(plain), bool(fenced), values)
    ids = set(conn.execute(stmt, params).scalars())
    return [p for p in group if p.id in ids]


# `_move`'s UPDATEs, built once per shape (which fences, which columns set, and which
# SQL expressions among the values: the very objects, kept here to be compared by
# identity). A caller that builds a new expression each call gets a new statement each
# call, as before; the dict is emptied when it grows past _SHAPES.
_MOVES: dict[tuple[Any, ...], tuple[sa.Update, tuple[Any, ...]]] = {}
_SHAPES = 64


def _move_statement(owner: bool, plain: bool, fenced: bool, values: Mapping[str, Any]
                    ) -> sa.Update:
    exprs = tuple(v for v in values.values() if isinstance(v, sa.ClauseElement))
    key = (owner, plain, fenced, tuple(values), tuple(id(v) for v in exprs))
    hit = _MOVES.get(key)
    if hit is not None and all(a is b for a, b in zip(hit[1], exprs, strict=True)):
        return hit[0]
    # The rows are found by their ids (the plain IN, which SQLite looks up by rowid; it
    # does not for the (id, attempt) pairs); state is compared through coalesce() so
    # that its planner does not walk the (state, next_attempt_at) index instead: every
    # post in that state, a second a claim with 1,000,000 queued.
    state = _POST.c.state.type
    where = [_POST.c.id.in_(sa.bindparam("m_ids", expanding=True)),
             sa.func.coalesce(_POST.c.state, _POST.c.state) == sa.bindparam("m_from", type_=state)]
    if owner:
        where.append(_POST.c.lease_owner == sa.bindparam("m_owner"))
    which = []
    if plain:
        which.append(_POST.c.id.in_(sa.bindparam("m_plain", expanding=True)))
    if fenced:
        which.append(sa.tuple_(_POST.c.id, _POST.c.attempt).in_(
            sa.bindparam("m_fenced", expanding=True)))
    sets = {k: v if isinstance(v, sa.ClauseElement) else sa.bindparam(f"v_{k}", type_=_POST.c[k].type)
            for k, v in values.items()}
    stmt = (update(_POST).where(*where, sa.or_(*which))
            .values(state=sa.bindparam("m_to", type_=state),
                    updated_at=sa.bindparam("m_now", type_=_POST.c.updated_at.type), **sets)
            .returning(_POST.c.id))
    if len(_MOVES) >= _SHAPES:
        _MOVES.clear()
    _MOVES[key] = (stmt, exprs)
    return stmt


@functools.cache
def _each_statement(keys: tuple[str, ...]) -> sa.Update:
    """`change`'s per-post values (`each`), by executemany: one statement per set of keys."""
    return (update(_POST).where(_POST.c.id == sa.bindparam("b_id"))
            .values({k: sa.bindparam(k) for k in keys}))


def transition(s: Session, post: Post, to: PostState, reason: str, now: datetime, actor: str,
               **values: Any) -> None:
    """`change()` for one post loaded in `s`, which is kept in step (strict)."""
    from sqlalchemy.orm import attributes
    assert post.id is not None
    s.flush()
    change(s, [Seen(post.id, post.state)], to, reason=reason, now=now, actor=actor,
           values=values)
    for key, value in {"state": to, "updated_at": now, **values}.items():
        if isinstance(value, sa.sql.ClauseElement):
            s.expire(post, [key])
        else:
            attributes.set_committed_value(post, key, value)


def fenced_update(s: Bind, post_id: int, expect_attempt: int, from_state: PostState,
                  to: PostState, reason: str, now: datetime, actor: str,
                  **values: object) -> bool:
    """Record the outcome of a daemon's own attempt: only if the post is still in
    `from_state` at `expect_attempt`. False means another daemon took it over (the
    lease was lost) and nothing was written."""
    return bool(change(s, [Seen(post_id, from_state, expect_attempt)], to, reason=reason,
                       now=now, actor=actor, values=values, strict=False))


# What a new post may start as: a planned or added post waits for a person's approval.
STARTS = frozenset({S.DRAFT})
_DATETIMES = frozenset(c.name for c in _POST.c if isinstance(c.type, UTCDateTime))
_JSONS = frozenset(c.name for c in _POST.c if isinstance(c.type, sa.JSON))


class Stored(NamedTuple):
    """Rows for `create` already in SQLite's storage form (`stored_datetime`, JSON as
    `json.dumps` text), made in any process: `columns` names each tuple's values.
    Without a `next_attempt_at`, a row's is its `due_at` (a new post is first tried
    when due), bound once."""

    columns: tuple[str, ...]
    values: Sequence[tuple[Any, ...]]


def stored_datetime(value: datetime) -> str:
    """An aware instant as SQLite stores it (what `UTCDateTime` binds): naive UTC text."""
    if value.tzinfo is None:
        raise ValueError("naive datetime given to the database; all instants are aware")
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def create(s: Bind, rows: Sequence[Mapping[str, Any]] | Stored, state: PostState, *,
           reason: str, now: datetime, actor: str, same: Mapping[str, Any] | None = None) -> int:
    """New posts in bulk, each in `state` with its first event (from nothing to `state`,
    `reason`, `actor`, at `now`); returns how many. Every row names the same columns;
    `idempotency_key` is given here (one random prefix per call, numbered within it),
    so the events find their posts by that prefix in one statement. `same`: values every
    row has (a campaign, `now`), given and converted once.

    On SQLite, where SQLAlchemy's per-value type processing would cost more than the
    insert itself (100,000 planned posts), values are converted to SQLite's storage
    form here — once per distinct value: most repeat (one `now`, a few hundred due
    times, options and warnings the caller passes as shared objects) — and handed to
    the driver's executemany; elsewhere the typed Core insert does it. `rows` may be
    `Stored` (SQLite only): converted already, by a caller that made them elsewhere."""
    if state not in STARTS:
        raise TminusError(f"a new post cannot start {state}; it starts as "
                          f"{' or '.join(sorted(STARTS))}")
    count = len(rows.values) if isinstance(rows, Stored) else len(rows)
    if not count:
        return 0
    run = secrets.token_hex(10)
    first, last = f"{run}{0:012x}", f"{run}{count - 1:012x}"
    keys = (list(rows.columns) if isinstance(rows, Stored) else
            [k for k in rows[0] if k not in ("state", "idempotency_key")])
    same = {k: v for k, v in (same or {}).items() if k not in ("state", "idempotency_key")}
    columns = [*keys, *same, "state", "idempotency_key"]
    conn = connection_of(s)
    if isinstance(rows, Stored) and (conn.dialect.name != "sqlite"
                                     or {"state", "idempotency_key"} & set(keys)):
        raise ValueError("rows in SQLite's storage form, without state and idempotency_key")
    if conn.dialect.name == "sqlite":
        # Only what varies from row to row is bound: the values every row shares (and
        # the state) are literals in the statement, stored exactly as bound ones would
        # be, and `Stored` rows' next_attempt_at (their due_at) takes due_at's
        # parameter again: each bound value costs the driver per row.
        common = [*_SqliteValues(list(same)).of(same), state.value] if same else [state.value]
        values: Sequence[Sequence[Any]]
        if isinstance(rows, Stored):
            values = rows.values
        else:
            stored = _SqliteValues(keys)
            values = [stored.of(row) for row in rows]
        places = [f"?{i + 1}" for i in range(len(keys))]
        if isinstance(rows, Stored) and "next_attempt_at" not in keys and "due_at" in keys:
            columns.insert(len(keys), "next_attempt_at")
            places.append(places[keys.index("due_at")])
        params = [(*row, f"{run}{n:012x}") for n, row in enumerate(values)]
        literals = [_sqlite_literal(v) for v in common]
        sql = (f"INSERT INTO {_POST.name} ({', '.join(columns)}) "
               f"VALUES ({', '.join([*places, *literals, f'?{len(keys) + 1}'])})")
        for i in range(0, len(params), _INSERT_CHUNK):
            conn.exec_driver_sql(sql, params[i:i + _INSERT_CHUNK])
    else:
        assert not isinstance(rows, Stored)
        typed = [{**row, **same, "state": state, "idempotency_key": f"{run}{n:012x}"}
                 for n, row in enumerate(rows)]
        for i in range(0, len(typed), _INSERT_CHUNK):
            s.execute(insert(_POST), typed[i:i + _INSERT_CHUNK])
    firsts = (sa.select(_POST.c.id, sa.literal(now, UTCDateTime()), sa.null(),
                        sa.literal(state.value), sa.literal(reason), sa.literal(actor))
              .where(_POST.c.idempotency_key.between(first, last)).order_by(_POST.c.id))
    s.execute(insert(tables.event).from_select(
        ["post_id", "at", "from_state", "to_state", "reason", "actor"], firsts))
    return len(rows)


_INSERT_CHUNK = 20_000   # rows per executemany: bounded parameter lists


def _sqlite_literal(value: Any) -> str:
    """A value every row shares, written into the statement as SQLite stores it bound:
    an integer as itself, text quoted (its quotes doubled), NULL."""
    if value is None:
        return "NULL"
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise TypeError(f"no SQLite literal for {type(value).__name__}")
    if isinstance(value, int):
        return str(value)
    return "'" + value.replace("'", "''") + "'"


def indexes_set_aside(s: Bind, coming: int) -> list[str]:
    """Before `coming` posts are created in one transaction on SQLite: the post table's
    plain secondary indexes dropped when the table holds no more rows than are coming,
    so the insert does not update five B-trees row by row; returns the statements
    that make them again, for `restore_indexes` before anything reads the posts back
    (the same transaction: a failed plan rolls the drop back with the rows, and a
    daemon reading meanwhile sees the committed schema). Building the five once over
    the table's rows costs a third of keeping them up to date row by row (100,000 posts
    into an empty table: about 0.5 s of CPU against 1.6 s), so a table larger than what
    is coming keeps them. Unique indexes (constraints) and partial ones (of thread posts,
    which a new post is not yet) are always kept; nothing is dropped
    elsewhere than SQLite (PostgreSQL's DROP INDEX would lock the table for every
    daemon until commit)."""
    conn = connection_of(s)
    if conn.dialect.name != "sqlite":
        return []
    rows = conn.exec_driver_sql(f"SELECT max(rowid) FROM {_POST.name}").scalar() or 0
    # (where ANALYZE has been run, dropping an index drops its statistics too)
    analyzed = conn.exec_driver_sql(
        "SELECT 1 FROM sqlite_master WHERE name = 'sqlite_stat1'").first() is not None
    if rows > coming or analyzed:
        return []
    # (partial indexes stay: those on parent_id and thread_root_id hold thread posts
    # only, and a post is put in a thread after the insert, `planner._link_threads`)
    plain = [name for _, name, unique, origin, partial in
             conn.exec_driver_sql(f"PRAGMA index_list({_POST.name})")
             if origin == "c" and not unique and not partial]
    found = conn.exec_driver_sql(
        f"SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = '{_POST.name}'"
    ).all()
    made = [sql for name, sql in found if name in plain and sql]
    for name, sql in found:
        if name in plain and sql:
            conn.exec_driver_sql(f'DROP INDEX "{name}"')
    return made


def restore_indexes(s: Bind, statements: Sequence[str]) -> None:
    """The indexes `indexes_set_aside` dropped, made again as they were."""
    if not statements:
        return
    conn = connection_of(s)
    # Meanwhile a page cache that holds the table (SQLite's default is 2 MB, 100,000
    # posts about 40 MB): each index is made from the rows read once from the write-ahead
    # log they spilled to, not five times over. Memory only, for these statements.
    cache = int(conn.exec_driver_sql("PRAGMA cache_size").scalar() or 0)
    conn.exec_driver_sql(f"PRAGMA cache_size = {min(cache, _BULK_CACHE_KIB)}")
    try:
        for sql in statements:
            conn.exec_driver_sql(sql)
    finally:
        conn.exec_driver_sql(f"PRAGMA cache_size = {cache}")


_BULK_CACHE_KIB = -65536   # 64 MiB (negative: in KiB)


class _SqliteValues:
    """A row's values as SQLite stores them (what SQLAlchemy's types would bind):
    aware datetimes as naive UTC text, JSON as text; each distinct value once."""

    def __init__(self, keys: Sequence[str]) -> None:
        # a tuple of the row's values (itemgetter gives one from two keys up)
        self.values: Callable[[Mapping[str, Any]], Sequence[Any]] = (
            operator.itemgetter(*keys) if len(keys) > 1
            else lambda row: tuple(row[k] for k in keys))
        self.datetimes = [i for i, k in enumerate(keys) if k in _DATETIMES]
        self.jsons = [i for i, k in enumerate(keys) if k in _JSONS]
        self.memo: dict[object, str] = {}
        self.shared: dict[int, tuple[object, str]] = {}  # by id(); the object kept alive

    def of(self, row: Mapping[str, Any]) -> list[Any]:
        out = list(self.values(row))
        for i in self.datetimes:
            value = out[i]
            if value is not None:
                text = self.memo.get(value)
                if text is None:
                    text = self.memo[value] = stored_datetime(value)
                out[i] = text
        for i in self.jsons:
            value = out[i]
            seen = self.shared.get(id(value))
            if seen is None or seen[0] is not value:
                seen = self.shared[id(value)] = (value, json.dumps(value))
            out[i] = seen[1]
        return out


def record_created(s: Bind, post_ids: Iterable[int], state: PostState, reason: str,
                   now: datetime, actor: str) -> None:
    """The first event of new posts (they start life in `state`: no move to check)."""
    rows = [{"post_id": pid, "at": now, "from_state": None, "to_state": state,
             "reason": reason, "actor": actor} for pid in post_ids]
    if rows:
        s.execute(_EVENTS, rows)


def record_note(s: Bind, post_ids: Iterable[int], state: PostState, reason: str,
                now: datetime, actor: str) -> None:
    """An event that is no change of state — a draft's text edited by a person, a
    re-plan that found the campaign file changed under an edit: from and to are the
    post's state, so the audit trail has it in order with the moves."""
    rows = [{"post_id": pid, "at": now, "from_state": state, "to_state": state,
             "reason": reason, "actor": actor} for pid in post_ids]
    if rows:
        s.execute(_EVENTS, rows)
