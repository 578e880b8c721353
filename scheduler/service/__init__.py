"""The service layer: every use case a person triggers, one function each.

The command line (`scheduler/cli.py`) and the web dashboard call these and nothing
below them: each takes plain arguments (an engine, values, `now`), does its work in its
own transactions, and returns a dataclass — or raises a `TminusError` whose one line
says what was wrong. No use case prints, reads the environment or asks the clock.

| module | use cases |
|---|---|
| `campaigns` | validate, plan, preview |
| `rehearsal` | rehearse: the campaign played on a virtual clock |
| `approving` | approve, on Core (a rehearsal approves without the ORM) |
| `posts` | cancel, queue_post, review, list_posts, post_log |
| `status` | status |
| `glance` | glance: `tminus status` (the overview's lines, drafts due soon, accounts not ready) |
| `accounts` | check_accounts, resume_account |
| `readiness` | not_ready (credentials missing, never verified), on Core: `tminus run` asks it |
| `run` | worker, run_once, run_daemon: the daemon's process, on Core (no ORM, SQLModel, pydantic) |
| `running` | demo |
| `database` | open_database, existing_database, upgrade_database, schema_version |
| `toolkit` | build_toolkit, toolkit_server (the supporters' static site) |
| `pauses` | pause, resume, pauses_in_force |
| `imports` | import_csv: `tminus queue import FILE.csv`, all or nothing |
| `edits` | edit_post, settle_conflict, edit_sheet |
| `people` | add_person, list_people, remove_person, set_password, set_role, log_in, session_person, log_out |
| `activity` | recent_activity |
| `overview` | overview, campaign_overview, campaign_audit (the dashboard's pages) |
| `timeline` | timeline, post_card, media_file: posts as cards, grouped by day |
| `approvals` | approval_sheet, digest_of: approving exactly what was shown |
| `alerts` | notify_test, check_alerts, alert_log (imported from the module) |
| `health` | readiness, metrics: `/readyz` and `/metrics` (imported from the module) |
| `calendar` | calendar_ics and the feed's address (imported from the module) |
| `report` | campaign_report, fetch_engagement (imported from the module) |
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

# Where each name lives. Importing a submodule costs its whole stack (SQLModel, the
# tables, Jinja, argon2...): `tminus --help` needs none of it and `tminus rehearse` a
# part, so each submodule is imported the first time one of its names is used (PEP 562).
# `rehearse` and its `Report` come straight from `rehearsal`, not through `campaigns`,
# which would add the preview's Jinja and rich tables to the rehearsal's start.
_HOME = {name: module for module, names in {
    "accounts": ("AccountCheck", "check_accounts", "resume_account"),
    "activity": ("ActivityEntry", "recent_activity"),
    "campaigns": ("PlanReport", "Validation", "plan", "preview", "validate"),
    "database": ("SchemaVersion", "existing_database", "no_database_at", "open_database",
                 "schema_version", "upgrade_database"),
    "edits": ("Edited", "EditSheet", "edit_post", "edit_sheet", "settle_conflict"),
    "glance": ("DUE_SOON", "DueSoon", "Glance", "glance"),
    "imports": ("Imported", "import_csv"),
    "pauses": ("Paused", "PauseInfo", "Resumed", "Target", "pause", "pauses_in_force", "resume"),
    "people": ("Action", "NotAllowed", "PersonInfo", "add_person", "list_people", "remove_person",
               "set_password", "set_role"),
    "approving": ("Approval", "approve"),
    "posts": ("Cancellation", "LogEntry", "OneOff", "PostLine", "PostLog", "Queued",
              "Resolution", "Reviewed", "cancel", "list_posts", "post_log", "queue_post",
              "review"),
    "readiness": ("Readiness", "not_ready"),
    "rehearsal": ("Report", "rehearse"),
    "run": ("run_daemon", "run_once", "worker"),
    "running": ("DemoReady", "demo", "demo_database"),
    "status": ("DEAD_AFTER", "AccountHold", "AlertDeliveries", "AlertDestination", "Attention",
               "DaemonInfo", "NextPost", "Status", "status"),
    "toolkit": ("SiteReport", "build_toolkit", "toolkit_server", "toolkit_url"),
}.items() for name in names}

if TYPE_CHECKING:   # the same names, eagerly, for mypy
    from scheduler.service.accounts import AccountCheck, check_accounts, resume_account
    from scheduler.service.activity import ActivityEntry, recent_activity
    from scheduler.service.approving import Approval, approve
    from scheduler.service.campaigns import PlanReport, Validation, plan, preview, validate
    from scheduler.service.database import (
        SchemaVersion,
        existing_database,
        no_database_at,
        open_database,
        schema_version,
        upgrade_database,
    )
    from scheduler.service.edits import Edited, EditSheet, edit_post, edit_sheet, settle_conflict
    from scheduler.service.glance import DUE_SOON, DueSoon, Glance, glance
    from scheduler.service.imports import Imported, import_csv
    from scheduler.service.pauses import Paused, PauseInfo, Resumed, Target, pause, pauses_in_force, resume
    from scheduler.service.people import (
        Action,
        NotAllowed,
        PersonInfo,
        add_person,
        list_people,
        remove_person,
        set_password,
        set_role,
    )
    from scheduler.service.posts import (
        Cancellation,
        LogEntry,
        OneOff,
        PostLine,
        PostLog,
        Queued,
        Resolution,
        Reviewed,
        cancel,
        list_posts,
        post_log,
        queue_post,
        review,
    )
    from scheduler.service.readiness import Readiness, not_ready
    from scheduler.service.rehearsal import Report, rehearse
    from scheduler.service.run import run_daemon, run_once, worker
    from scheduler.service.running import DemoReady, demo, demo_database
    from scheduler.service.status import (
        DEAD_AFTER,
        AccountHold,
        AlertDeliveries,
        AlertDestination,
        Attention,
        DaemonInfo,
        NextPost,
        Status,
        status,
    )
    from scheduler.service.toolkit import SiteReport, build_toolkit, toolkit_server, toolkit_url


if not TYPE_CHECKING:   # hidden from mypy, which would otherwise accept any name as Any
    def __getattr__(name: str) -> Any:
        module = _HOME.get(name)
        if module is None:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
        globals()[name] = value
        return value

    class _Package(types.ModuleType):
        """Importing a submodule binds it on its package (`service.status` would become the
        module `scheduler.service.status`): a use case keeps its name instead."""

        def __setattr__(self, name: str, value: Any) -> None:
            if not (name in _HOME and isinstance(value, types.ModuleType)):
                super().__setattr__(name, value)

    sys.modules[__name__].__class__ = _Package

__all__ = [
    "DEAD_AFTER",
    "DUE_SOON",
    "AccountCheck",
    "AccountHold",
    "Action",
    "ActivityEntry",
    "AlertDeliveries",
    "AlertDestination",
    "Approval",
    "Attention",
    "Cancellation",
    "DaemonInfo",
    "DemoReady",
    "DueSoon",
    "EditSheet",
    "Edited",
    "Glance",
    "Imported",
    "LogEntry",
    "NextPost",
    "NotAllowed",
    "OneOff",
    "PauseInfo",
    "Paused",
    "PersonInfo",
    "PlanReport",
    "PostLine",
    "PostLog",
    "Queued",
    "Readiness",
    "Report",
    "Resolution",
    "Resumed",
    "Reviewed",
    "SchemaVersion",
    "SiteReport",
    "Status",
    "Target",
    "Validation",
    "add_person",
    "approve",
    "build_toolkit",
    "cancel",
    "check_accounts",
    "demo",
    "demo_database",
    "edit_post",
    "edit_sheet",
    "existing_database",
    "glance",
    "import_csv",
    "list_people",
    "list_posts",
    "no_database_at",
    "not_ready",
    "open_database",
    "pause",
    "pauses_in_force",
    "plan",
    "post_log",
    "preview",
    "queue_post",
    "recent_activity",
    "rehearse",
    "remove_person",
    "resume",
    "resume_account",
    "review",
    "run_daemon",
    "run_once",
    "schema_version",
    "set_password",
    "set_role",
    "settle_conflict",
    "status",
    "toolkit_server",
    "toolkit_url",
    "upgrade_database",
    "validate",
    "worker",
]
