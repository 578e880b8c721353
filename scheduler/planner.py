"""Planning: a campaign folder expanded into posts in the queue.

Planning is idempotent: the same files give the same rows. Re-planning an edited
campaign updates drafts, returns approved posts whose text or time changed to draft
(with the difference shown), and cancels posts no longer in the file unless they were
already handed to a platform. Everything is checked first; on any error nothing is
written.

Planning runs on Core statements over `scheduler.tables` and plain rows, as the daemon
does: a rehearsal plans in a process that never imports SQLModel, pydantic or the
models (tests/test_startup.py), and 100,000 rows are no ORM objects anyway.
"""

from __future__ import annotations

import dataclasses
import difflib
import gc
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from content.campaign import AccountSpec, Campaign, load_campaign
from content.countdown import duration
from content.errors import CampaignError, CampaignErrors, TminusError, Unconfirmed
from content.expand import SHARE_COMPARING, SHARE_WRITING, Expansion, PlannedPost, expand_campaign
from scheduler.approval import text_hash
from scheduler.db import transaction
from scheduler.localtime import local
from scheduler.rows import AccountRow
from scheduler.states import CANCELABLE_STATES, PostState
from scheduler.tables import account as account_table
from scheduler.tables import campaign as campaign_table
from scheduler.tables import event as event_table
from scheduler.tables import post as post_table
from scheduler.transitions import (
    Seen,
    Stored,
    change,
    create,
    indexes_set_aside,
    record_note,
    restore_indexes,
    stored_datetime,
)

S = PostState
# A first plan whose first part has this many posts may set the post table's indexes
# aside while it writes (`transitions.indexes_set_aside`)
BULK_FROM = 1_000
REMOVED = "removed from the campaign file"


@dataclass
class PlanReport:
    campaign: str
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    returned_to_draft: list[tuple[int, str]] = field(default_factory=list)  # (post id, diff)
    canceled: int = 0
    kept_sent: int = 0
    warnings: list[str] = field(default_factory=list)
    # posts a person edited whose text the campaign file has changed since: the edit is
    # kept and the post flagged until a person settles it (post id, edit → file's diff)
    conflicts: list[tuple[int, str]] = field(default_factory=list)
    # drafts this plan changed (post id, what changed): each is an event too, so an
    # approver can see in `log` what changed since they looked
    changed_drafts: list[tuple[int, str]] = field(default_factory=list)

    @property
    def updated_drafts(self) -> int:
        """Posts changed that were (and stay) drafts: `updated` counts the approved ones
        sent back to draft too, which are `returned_to_draft`."""
        return self.updated - len(self.returned_to_draft)


def check(folder: Path, *, now: datetime | None, limits: dict[str, int] | None = None,
          known: dict[str, str] | None = None,
          expanded: tuple[Campaign, Expansion] | None = None) -> tuple[Campaign, Expansion]:
    """Load and expand a campaign; raise CampaignErrors listing every problem. `known`:
    the platform of each account the database already holds, which no campaign can
    change. The expansion's warnings are then every warning, each said once.
    `expanded`: the folder already loaded and expanded at `now` with `limits` (a
    rehearsal does that in a child process), not done again."""
    if expanded is not None:
        campaign, expansion = expanded
        return campaign, _expand(campaign, now=now, limits=limits, known=known,
                                 expansion=expansion)
    campaign = load_campaign(folder, now=now)
    return campaign, _expand(campaign, now=now, limits=limits, known=known)


def _expand(campaign: Campaign, *, now: datetime | None, limits: dict[str, int] | None,
            known: dict[str, str] | None,
            ready: Callable[[list[PlannedPost], Any], None] | None = None,
            share: float | None = None, expansion: Expansion | None = None,
            prepare: Callable[[list[PlannedPost]], Any] | None = None) -> Expansion:
    """`check` of a loaded campaign (or of its `expansion`, made already); `ready`,
    `share` and `prepare` as `expand_campaign`'s."""
    errors = _account_conflicts(campaign, known or {})
    if not campaign.posts:
        errors.append(CampaignError(
            "there is no [[posts]] table: a campaign needs at least one post to plan (to stop "
            "a planned campaign's posts, use `tminus cancel SLUG` or `tminus pause SLUG`)",
            file=str(campaign.file), key="posts"))
    if expansion is None:
        expansion = expand_campaign(campaign, limits=limits, now=now,
                                    ready=None if errors else ready, share=share,
                                    prepare=prepare)
    if errors or expansion.errors:
        raise CampaignErrors([*errors, *expansion.errors])
    expansion.warnings[:0] = campaign.warnings
    expansion.warnings.extend(budget_warnings(campaign, expansion))
    expansion.warnings.extend(post_warnings(campaign, expansion))
    return expansion


def _account_conflicts(campaign: Campaign, known: dict[str, str]) -> list[CampaignError]:
    return [CampaignError(f"account {name!r} is already known as a {known[name]} account (from "
                          f"another campaign); a campaign cannot make it {spec.platform} — "
                          "rename one of them", file=str(campaign.file),
                          key=f"accounts.{name}.platform")
            for name, spec in campaign.accounts.items()
            if name in known and known[name] != spec.platform]


def post_warnings(campaign: Campaign, expansion: Expansion) -> list[str]:
    """Each post's warnings, naming the post by account and local time; a warning that
    many posts share (a template without the hashtags) is said once, with how many."""
    by_text: dict[str, list[PlannedPost]] = {}
    for p in expansion.posts:
        for w in p.warnings:
            by_text.setdefault(w, []).append(p)
    out = []
    for w, posts in by_text.items():
        first = posts[0]
        more = f" and {len(posts) - 1} more post(s)" if len(posts) > 1 else ""
        out.append(f"{first.account} {first.due_at.astimezone(campaign.timezone):%a %d %b %Y %H:%M %Z}"
                   f"{more}: {w}")
    return out


def known_platforms(engine: Engine) -> dict[str, str]:
    """The accounts the database holds, with their platform."""
    with engine.connect() as conn:
        return {r.name: r.platform for r in conn.execute(
            sa.select(account_table.c.name, account_table.c.platform))}


def budget_warnings(campaign: Campaign, expansion: Expansion) -> list[str]:
    """Warn where the schedule asks more of an account than its rate budget allows in
    some window: the extra posts would wait, and may expire."""
    from scheduler.dispatch import Budget, budgets_of, over_budget
    out = []
    by_account: dict[str, list[datetime]] = {}
    for p in expansion.posts:
        by_account.setdefault(p.account, []).append(p.due_at)
    for name, spec in campaign.accounts.items():
        dues = sorted(by_account.get(name, []))
        custom = Budget(spec.budget.posts, spec.budget.per) if spec.budget else None
        for b in budgets_of(spec.platform, spec.tier, custom):
            hit = over_budget(dues, b)
            if hit:
                start, count = hit
                window = duration(b.window, spaced=True, days=False)
                out.append(f"{campaign.file} [accounts.{name}]: {count} posts within {window} "
                           f"from {start.astimezone(campaign.timezone):%Y-%m-%d %H:%M %Z}, "
                           f"over its budget of {b.posts} per {window} "
                           f"({spec.platform} {spec.tier}); the extra posts will wait and may expire")
    return out


def instance_limits(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {r.name: r.max_characters for r in conn.execute(
            sa.select(account_table.c.name, account_table.c.max_characters)) if r.max_characters}


def plan(engine: Engine, folder: Path, *, now: datetime, actor: str = "plan",
         replace: bool = False, cancel_ok: bool = False,
         checked: tuple[Campaign, Expansion] | None = None) -> PlanReport:
    """Plan (or re-plan) the campaign in `folder`. A slug already planned from another
    folder is refused unless `replace` (the campaign moved): then this folder is the
    campaign, and posts not in it are canceled as on any re-plan. A re-plan that would
    cancel approved posts, or every post planned before (a different or an emptied
    file), raises `Unconfirmed` and writes nothing, unless `cancel_ok`. `checked`: the
    caller's own `check` of `folder` at `now` against this database (the rehearsal's,
    into an empty one), not made twice."""
    if checked is not None:
        campaign, expansion = checked
    else:
        campaign = load_campaign(folder, now=now)
        limits, known = instance_limits(engine), known_platforms(engine)
    with _collector_paused(), transaction(engine) as s:
        try:
            campaign_id = _upsert_campaign(s, campaign, now, replace)
            accounts = {name: _upsert_account(s, spec, campaign, campaign_id)
                        for name, spec in campaign.accounts.items()}
        except TminusError:
            if checked is None:   # the campaign's own errors first, as if checked before
                _expand(campaign, now=now, limits=limits, known=known)
            raise
        step = _Compare(s, campaign.slug, campaign_id, accounts, now, actor, campaign.timezone)
        if checked is None:
            # each part of the posts is compared (and, on a first plan, written) as soon
            # as it is rendered, while the rest are; on any error the transaction is
            # rolled back, so nothing is written, as ever
            # (a re-plan only compares most parts: this process renders more of them)
            replan = s.execute(sa.select(post_table.c.id).where(
                post_table.c.campaign_id == campaign_id).limit(1)).first() is not None
            expansion = _expand(campaign, now=now, limits=limits, known=known, ready=step.take,
                                share=SHARE_COMPARING if replan else SHARE_WRITING,
                                prepare=None if replan else step.stored)
        else:
            step.take(expansion.posts)
        existing, report, new = step.existing_rows(), step.report, step.new
        report.warnings = list(expansion.warnings)
        # (a first plan has no rows to find gone from the file)
        seen = {p.plan_key for p in expansion.posts} if existing else set()
        if not cancel_ok:
            _confirm_removals(campaign.slug, existing, seen)
        _insert_many(s, campaign_id, accounts, new[step.written:], now, actor)
        step.written_all()
        report.created += len(new)
        _link_threads(s, campaign_id, new)
        removed = [old for key, old in existing.items() if key not in seen and old.origin == "plan"]
        report.canceled = len(change(
            s, [Seen(old.id, old.state) for old in removed if old.state in CANCELABLE_STATES],
            S.CANCELED, reason=REMOVED, now=now, actor=actor))
        report.kept_sent += sum(1 for old in removed
                                if old.state not in (*CANCELABLE_STATES, S.CANCELED, S.EXPIRED))
        # conflicts found by earlier plans that no one has settled yet are shown again
        # (a first plan has none: only a post planned before can be edited)
        shown = {pid for pid, _ in report.conflicts}
        c = post_table.c
        report.conflicts += [(r.id, _diff(r.text, r.planned_text)) for r in s.execute(
            sa.select(c.id, c.text, c.planned_text).where(
                c.campaign_id == campaign_id, c.plan_conflict,
                c.state.in_([S.DRAFT, S.QUEUED])).order_by(c.id))
            if r.id not in shown] if existing else []
    return report


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Python's cycle collector off while planning (and in the child forked for it):
    planning makes a few hundred thousand objects that live until it ends, and each
    full collection walked them all again (a ninth of planning 100,000 posts). What
    planning leaves in cycles is collected once it ends."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


class _Compare:
    """The posts of a plan compared with the campaign's rows, part by part in their
    order: unchanged, changed (updated now), or new. A first plan (no rows yet) writes
    its new posts as they come; a re-plan writes them after every update, as one step."""

    def __init__(self, s: sa.Connection, slug: str, campaign_id: int,
                 accounts: dict[str, AccountRow],
                 now: datetime, actor: str, tz: ZoneInfo) -> None:
        self.s, self.campaign_id, self.accounts = s, campaign_id, accounts
        self.now, self.actor, self.tz = now, actor, tz
        self.report = PlanReport(campaign=slug)
        self.existing: dict[str, _Existing] | None = None
        self.new: list[PlannedPost] = []
        self.written = 0                          # of `new`, already inserted
        self.options: dict[object, dict[str, Any]] = {}
        self.aside: list[str] = []              # indexes to make again once written
        # a first plan's rows as SQLite stores them, made where each part is rendered
        self.stored = (_StoredRows({name: acc.id for name, acc in accounts.items()})
                       if s.dialect.name == "sqlite" else None)

    def existing_rows(self) -> dict[str, _Existing]:
        # read on the first part: while a forked child renders the rest
        if self.existing is None:
            self.existing = _existing(self.s, self.campaign_id)
        return self.existing

    def take(self, posts: list[PlannedPost], stored: Stored | None = None) -> None:
        """The next part of the posts; `stored`: their rows made already (`self.stored`
        in the process that rendered them), for a first plan."""
        existing, report, s = self.existing_rows(), self.report, self.s
        if not existing:
            self.new.extend(posts)   # a first plan: every post is new
        for planned in posts if existing else ():
            old = existing.get(planned.plan_key)
            if old is None:
                self.new.append(planned)
            elif (_file_text(old) == planned.text and old.not_after == planned.not_after
                  and old.options == _shared_options(planned, self.options)
                  and old.state != S.CANCELED):
                report.unchanged += 1
            else:
                _update(s, _post(s, old.id), planned, self.now, self.actor, report, self.tz)
        if not existing:
            if not self.written and len(self.new) >= BULK_FROM:
                self.aside = indexes_set_aside(s, len(self.new))
            part = self.new[self.written:]    # (all of `posts`: there are no rows yet)
            if stored is None and self.stored is not None:
                stored = self.stored(part)
            _insert_many(s, self.campaign_id, self.accounts, part, self.now, self.actor, stored)
            self.written = len(self.new)

    def written_all(self) -> None:
        """Every new post is in: the indexes set aside are made again, before anything
        reads the posts back (threads, conflicts)."""
        restore_indexes(self.s, self.aside)
        self.aside = []


class _Existing(NamedTuple):
    id: int
    plan_key: str
    state: PostState
    text: str
    not_after: datetime
    options: dict[str, Any]     # shared between rows with the same options: read only
    origin: str
    planned_text: str | None


def _existing(s: sa.Connection, campaign_id: int) -> dict[str, _Existing]:
    """The campaign's posts as plain tuples, not ORM objects: re-planning 100,000
    unchanged posts must be cheap; only the rows that change are loaded as objects.
    State, expiry and options repeat from row to row: each is read raw and converted
    once per distinct value, by its column type's own conversion."""
    post = post_table
    dialect = s.dialect

    def converter(column: str) -> Callable[[Any], Any]:
        convert = post.c[column].type.dialect_impl(dialect).result_processor(dialect, None)
        memo: dict[Any, Any] = {}

        def typed(raw: Any) -> Any:
            value = memo.get(raw, memo)
            if value is memo:
                value = memo[raw] = convert(raw) if convert is not None and raw is not None else raw
            return value
        return typed

    state, not_after = converter("state"), converter("not_after")
    decoded: dict[str, dict[str, Any]] = {}
    raw = sa.String()
    out = {}
    # Core rows, fetched at once: a fetch per row would double it
    for r in s.execute(
            sa.select(post.c.id, post.c.plan_key, sa.type_coerce(post.c.state, raw), post.c.text,
                      sa.type_coerce(post.c.not_after, raw), sa.cast(post.c.options, sa.Text()),
                      post.c.origin, post.c.planned_text)
            .where(post.c.campaign_id == campaign_id)).all():
        options = decoded.get(r[5])
        if options is None:
            options = decoded[r[5]] = json.loads(r[5])
        out[r[1]] = _Existing(r[0], r[1], state(r[2]), r[3], not_after(r[4]), options, r[6], r[7])
    return out


def _confirm_removals(slug: str, existing: dict[str, Any], keys: set[str]) -> None:
    gone = [old for key, old in existing.items()
            if key not in keys and old.origin == "plan" and old.state in CANCELABLE_STATES]
    approved = sorted(old.id for old in gone if old.state != S.DRAFT)
    everything = bool(gone) and not keys & existing.keys()
    if not approved and not everything:
        return
    ids = ", ".join(map(str, approved[:10])) + (", …" if len(approved) > 10 else "")
    what = (f"{len(approved)} approved post(s) ({ids})" if approved else f"all {len(gone)} post(s)")
    if everything and approved:
        what = f"all {len(gone)} post(s), {len(approved)} of them approved ({ids}),"
    raise Unconfirmed(f"this plan would cancel {what} of {slug}: they are not in the campaign "
                      "file; nothing was written — put them back in the file, or run the plan "
                      "again with --yes to cancel them",
                      f"This plan cancels {what} of {slug}: they are not in the campaign file. "
                      "Cancel them?")


def _upsert_campaign(s: sa.Connection, c: Campaign, now: datetime, replace: bool) -> int:
    """The campaign's row, added or brought up to date; its id."""
    t = campaign_table
    row = s.execute(sa.select(t.c.id, t.c.folder).where(t.c.slug == c.slug)).first()
    here = str(c.folder.resolve())
    if row is not None and row.folder and row.folder != here and not replace:
        raise TminusError(
            f"{c.file}: slug {c.slug!r} is already planned from "
            f"{Path(row.folder) / 'campaign.toml'}; give this campaign its own slug, or, if "
            f"the campaign moved here, run `tminus plan {c.folder} --replace` (posts not in "
            "this folder are then canceled)")
    values = {"title": c.title, "deadline": c.deadline, "timezone": c.timezone.key,
              "folder": here, "hashtags": list(c.hashtags), "account_names": sorted(c.accounts),
              "updated_at": now}
    if row is None:
        inserted = s.execute(sa.insert(t).values(slug=c.slug, created_at=now, **values))
        return int(inserted.inserted_primary_key[0])  # type: ignore[index]   # (never None)
    s.execute(sa.update(t).where(t.c.id == row.id).values(**values))
    return int(row.id)


def _upsert_account(s: sa.Connection, spec: AccountSpec, campaign: Campaign, campaign_id: int
                    ) -> AccountRow:
    """An account belongs to the campaign that declared it first: another campaign may
    post through it only declaring it exactly alike (platform, credentials prefix, tier,
    budget) — never take it over with other credentials."""
    t = account_table
    found = s.execute(sa.select(t).where(t.c.name == spec.name)).first()
    declared: dict[str, Any] = {
        "campaign_id": campaign_id, "credentials": spec.credentials, "tier": spec.tier,
        "budget_posts": spec.budget.posts if spec.budget else None,
        "budget_seconds": int(spec.budget.per.total_seconds()) if spec.budget else None}
    if found is None:
        inserted = s.execute(sa.insert(t).values(name=spec.name, platform=spec.platform,
                                                 **declared))
        new_id = inserted.inserted_primary_key[0]  # type: ignore[index]   # (never None)
        return AccountRow(id=int(new_id), name=spec.name, platform=spec.platform, **declared)
    acc = AccountRow.of(found)
    if acc.campaign_id is not None and acc.campaign_id != campaign_id:
        differs = _account_differences(acc, spec)
        if differs:
            owner = s.execute(sa.select(campaign_table.c.slug, campaign_table.c.folder).where(
                campaign_table.c.id == acc.campaign_id)).first()
            where = (f"campaign {owner.slug!r} ({Path(owner.folder) / 'campaign.toml'})"
                     if owner is not None and owner.folder else "another campaign")
            raise TminusError(
                f"{campaign.file} [accounts.{spec.name}]: account {spec.name!r} belongs to "
                f"{where}, which declares it with {'; '.join(differs)}; declare it exactly "
                "alike, or give this campaign's account another name")
        return acc     # shared as declared by its own campaign
    if acc.platform != spec.platform:
        raise TminusError(f"account {spec.name!r} is already known as a {acc.platform} account; "
                          f"another campaign cannot make it {spec.platform} — rename one of them")
    s.execute(sa.update(t).where(t.c.id == acc.id).values(**declared))
    return dataclasses.replace(acc, **declared)


def _account_differences(acc: AccountRow, spec: AccountSpec) -> list[str]:
    budget = ((spec.budget.posts, int(spec.budget.per.total_seconds())) if spec.budget
              else (None, None))
    pairs = (("platform", acc.platform, spec.platform),
             ("credentials", acc.credentials, spec.credentials), ("tier", acc.tier, spec.tier),
             ("budget", (acc.budget_posts, acc.budget_seconds), budget))
    return [f"{key} = {_toml(mine)} (not {_toml(theirs)})" for key, mine, theirs in pairs
            if mine != theirs]


def _toml(value: object) -> str:
    """A declared value as the campaign file writes it (a budget, not a Python tuple)."""
    if isinstance(value, tuple):
        posts, seconds = value
        return "none (the tier's)" if posts is None else f'{{ posts = {posts}, per = "{seconds}s" }}'
    return repr(value)


def _insert_many(s: sa.Connection, campaign_id: int, accounts: dict[str, AccountRow],
                 posts: list[PlannedPost], now: datetime, actor: str,
                 stored: Stored | None = None) -> None:
    """New drafts and their "planned" events, in bulk through the one write path: a
    campaign can hold 100,000 posts, and one ORM object per row would cost seconds per
    ten thousand. `stored`: the posts' rows in SQLite's storage form, made already."""
    if not posts:
        return
    same = {"campaign_id": campaign_id, "origin": "plan", "attempt": 0, "created_at": now,
            "updated_at": now}
    ids = {name: acc.id for name, acc in accounts.items()}
    if stored is None and s.dialect.name == "sqlite":
        stored = _StoredRows(ids)(posts)
    if stored is not None:
        create(s, stored, S.DRAFT, reason="planned", now=now, actor=actor, same=same)
        return
    # Equal options and warnings are passed as one shared object each, so the write
    # path turns each into JSON once (a few distinct values among 100,000 posts).
    shared: dict[object, Any] = {}
    rows = []
    for p in posts:
        options = _shared_options(p, shared)
        warnings = shared.get(p.warnings)
        if warnings is None:
            warnings = shared[p.warnings] = list(p.warnings)
        rows.append({
            "account_id": ids[p.account], "plan_key": p.plan_key, "post_key": p.post_key,
            "text": p.text, "text_hash": text_hash(p.text), "due_at": p.due_at,
            "not_after": p.not_after, "next_attempt_at": p.due_at, "options": options,
            "warnings": warnings, "length": p.length.length, "length_limit": p.length.limit,
        })
    create(s, rows, S.DRAFT, reason="planned", now=now, actor=actor, same=same)


class _StoredRows:
    """New posts as the rows `create` inserts on SQLite, in its storage form, the
    values `_insert_many`'s typed rows are stored as: made where the posts are rendered
    (a forked child renders most of a large plan: `expand_campaign`'s `prepare`), so
    the process writing them only inserts. Each distinct time, options and warnings
    is converted once."""

    # (no next_attempt_at: `create` gives each row its due_at, bound once)
    COLUMNS = ("account_id", "plan_key", "post_key", "text", "text_hash", "due_at",
               "not_after", "options", "warnings", "length", "length_limit")

    def __init__(self, ids: dict[str, int]) -> None:
        self.ids = ids
        self.times: dict[datetime, str] = {}
        self.options: dict[object, str] = {}
        self.warnings: dict[tuple[str, ...], str] = {}

    def __call__(self, posts: list[PlannedPost]) -> Stored:
        ids, times, options, warnings = self.ids, self.times, self.options, self.warnings
        values = []
        for p in posts:
            due, until = times.get(p.due_at), times.get(p.not_after)
            if due is None:
                due = times[p.due_at] = stored_datetime(p.due_at)
            if until is None:
                until = times[p.not_after] = stored_datetime(p.not_after)
            key = (p.language, p.visibility, p.content_warning, p.media)
            shown = options.get(key)
            if shown is None:
                shown = options[key] = json.dumps(p.options())
            said = warnings.get(p.warnings)
            if said is None:
                said = warnings[p.warnings] = json.dumps(list(p.warnings))
            values.append((ids[p.account], p.plan_key, p.post_key, p.text, text_hash(p.text),
                           due, until, shown, said, p.length.length, p.length.limit))
        return Stored(self.COLUMNS, values)


def _shared_options(p: PlannedPost, shared: dict[object, Any]) -> dict[str, Any]:
    """`p.options()`, one dict for all posts with the same options: read only."""
    key = ("o", p.language, p.visibility, p.content_warning, p.media)
    options = shared.get(key)
    if options is None:
        options = shared[key] = p.options()
    return options


def _link_threads(s: sa.Connection, campaign_id: int, posts: list[PlannedPost]) -> None:
    """Point each new thread post at the post it replies to and at the thread's first."""
    parts = [p for p in posts if p.reply_to_key]
    if not parts:
        return
    c = post_table.c
    keys = {k for p in parts for k in (p.plan_key, p.reply_to_key, p.thread_root_key) if k}
    ids: dict[str, int] = {r.plan_key: r.id for r in s.execute(
        sa.select(c.plan_key, c.id).where(c.campaign_id == campaign_id, c.plan_key.in_(keys)))}
    for p in parts:
        assert p.reply_to_key and p.thread_root_key
        s.execute(sa.update(post_table).where(c.id == ids[p.plan_key]).values(
            parent_id=ids[p.reply_to_key], thread_root_id=ids[p.thread_root_key]))


def _file_text(post: Any) -> str:
    """The text the campaign file gave a post: its own, unless a person's edit stands."""
    return str(post.text if post.planned_text is None else post.planned_text)


# A post a re-plan changes, as it was read: a plain row. What changes is written by a
# statement (`_write`), and a change of state by `change`, as everywhere.
PostRow = sa.Row[Any]


def _post(s: sa.Connection, post_id: int) -> PostRow:
    return s.execute(sa.select(post_table).where(post_table.c.id == post_id)).one()


def _write(s: sa.Connection, post_id: int, values: dict[str, Any]) -> None:
    s.execute(sa.update(post_table).where(post_table.c.id == post_id).values(values))


def _update(s: sa.Connection, old: PostRow, p: PlannedPost, now: datetime, actor: str,
            report: PlanReport, tz: ZoneInfo) -> None:
    changed = (_file_text(old) != p.text or old.not_after != p.not_after
               or old.options != p.options())
    revived = old.state == S.CANCELED and _last_reason_removed(s, old.id)
    if not changed and not revived:
        report.unchanged += 1
        return
    if old.state not in (S.DRAFT, S.QUEUED, S.CANCELED):
        report.kept_sent += 1  # already handed to a platform: history is not rewritten
        return
    if old.state == S.CANCELED and not revived:
        report.unchanged += 1  # canceled by a person: stays canceled
        return
    if old.planned_text is not None and not revived:
        _update_edited(s, old, p, now, actor, report, tz)
        return
    diff = _what_changed(old, p, tz)
    values = {"planned_text": None, "plan_conflict": False, "text": p.text,
              "text_hash": text_hash(p.text), "not_after": p.not_after, "options": p.options(),
              "warnings": list(p.warnings), "length": p.length.length,
              "length_limit": p.length.limit, "updated_at": now}
    if old.state == S.QUEUED:
        _write(s, old.id, values | {"approved_hash": None})
        change(s, [Seen(old.id, old.state)], S.DRAFT, now=now, actor=actor,
               reason="changed in the campaign file; approve it again"
               + (f"\n{diff}" if diff else ""))
        report.returned_to_draft.append((old.id, diff))
    elif revived:
        _write(s, old.id, values | {"approved_hash": None})
        change(s, [Seen(old.id, old.state)], S.DRAFT, reason="back in the campaign file",
               now=now, actor=actor)
    else:
        _write(s, old.id, values)
        _note_draft_changed(s, old.id, diff, now, actor, report)
    report.updated += 1


def _note_draft_changed(s: sa.Connection, post_id: int, what: str, now: datetime, actor: str,
                        report: PlanReport) -> None:
    """A draft changed by a re-plan: an event with the difference (no change of state),
    so `approve CAMPAIGN` never takes a text no one could have seen."""
    record_note(s, [post_id], S.DRAFT, "changed in the campaign file by a re-plan"
                + (f"\n{what}" if what else ""), now, actor)
    report.changed_drafts.append((post_id, what))


def _what_changed(old: PostRow, p: PlannedPost, tz: ZoneInfo) -> str:
    """The difference between a post and what the campaign file now gives it: the
    text's diff, then its expiry (in the campaign's timezone) and each option that
    changed."""
    parts = [_diff(old.text, p.text)] if old.text != p.text else []
    if old.not_after != p.not_after:
        parts.append(f"not_after: {local(old.not_after, tz)} → {local(p.not_after, tz)}")
    before, after = old.options or {}, p.options()
    for key in sorted(set(before) | set(after)):
        a, b = before.get(key), after.get(key)
        if key == "media":
            a, b = _media_shown(a), _media_shown(b)
        if a != b:
            parts.append(f"{key.replace('_', ' ')}: {a!r} → {b!r}")
    return "\n".join(parts)


def _media_shown(media: Any) -> list[tuple[str, str]]:
    return [(Path(str(m.get("path", ""))).name, str(m.get("alt", ""))) for m in media or []]


def _update_edited(s: sa.Connection, old: PostRow, p: PlannedPost, now: datetime, actor: str,
                   report: PlanReport, tz: ZoneInfo) -> None:
    """A post a person edited: their text stays. The file's text is kept beside it; if
    the file changed it, that is a conflict for a person to settle. Time and options
    follow the file as for any post."""
    assert old.planned_text is not None
    text_changed = old.planned_text != p.text
    timing_changed = old.not_after != p.not_after or old.options != p.options()
    values: dict[str, Any] = {"not_after": p.not_after, "options": p.options(), "updated_at": now}
    if text_changed:
        values |= {"planned_text": p.text, "plan_conflict": True}
        report.conflicts.append((old.id, _diff(old.text, p.text)))
    # (the text is the person's edit: only the lines about time and options)
    timing = "\n".join(line for line in _what_changed(old, p, tz).splitlines()
                       if line.startswith(("not_after:", "language:", "visibility:",
                                           "content warning:", "media:")))
    state = old.state
    if timing_changed and old.state == S.QUEUED:
        _write(s, old.id, values | {"approved_hash": None})
        change(s, [Seen(old.id, old.state)], S.DRAFT, now=now, actor=actor,
               reason="its time or options changed in the campaign file; approve it again"
               + (f"\n{timing}" if timing else ""))
        state = S.DRAFT
        report.returned_to_draft.append((old.id, timing))
    else:
        _write(s, old.id, values)
        if timing_changed and old.state == S.DRAFT:
            _note_draft_changed(s, old.id, timing, now, actor, report)
    if text_changed:
        record_note(s, [old.id], state,
                    f"the campaign file changed this post after {old.edited_by}'s edit; the "
                    f"edit is kept until a person settles it (`tminus edit {old.id} --keep` "
                    f"or `--use-file`)\n{_diff(old.text, p.text)}", now, actor)
    if timing_changed:
        report.updated += 1
    else:
        report.unchanged += 1


def _last_reason_removed(s: sa.Connection, post_id: int) -> bool:
    e = event_table.c
    last = s.execute(sa.select(e.reason).where(e.post_id == post_id)
                     .order_by(e.id.desc()).limit(1)).first()
    return last is not None and last.reason == REMOVED


def _diff(old: str, new: str) -> str:
    if old == new:
        return ""
    lines = difflib.unified_diff(old.splitlines(), new.splitlines(), "approved", "now",
                                 lineterm="", n=0)
    return "\n".join(list(lines)[2:])
