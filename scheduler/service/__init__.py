"""The service layer: every use case a person triggers, one function each.

The command line (`scheduler/cli.py`) and the web dashboard call these and nothing
below them: each takes plain arguments (an engine, values, `now`), does its work in its
own transactions, and returns a dataclass — or raises a `TminusError` whose one line
says what was wrong. No use case prints, reads the environment or asks the clock.

| module | use cases |
|---|---|
| `campaigns` | validate, plan, preview, rehearse |
| `posts` | approve, cancel, queue_post, review, list_posts, post_log |
| `status` | status |
| `accounts` | check_accounts, resume_account |
| `running` | worker, run_once, run_daemon, demo |
| `database` | open_database, upgrade_database, schema_version |
| `toolkit` | build_toolkit, toolkit_server (the supporters' static site) |
"""

from scheduler.service.accounts import AccountCheck, check_accounts, resume_account
from scheduler.service.campaigns import PlanReport, Report, Validation, plan, preview, rehearse, validate
from scheduler.service.database import SchemaVersion, open_database, schema_version, upgrade_database
from scheduler.service.posts import (
    Approval,
    Cancellation,
    LogEntry,
    OneOff,
    PostLine,
    PostLog,
    Queued,
    Resolution,
    Reviewed,
    approve,
    cancel,
    list_posts,
    post_log,
    queue_post,
    review,
)
from scheduler.service.running import DemoReady, demo, demo_database, run_daemon, run_once, worker
from scheduler.service.status import DEAD_AFTER, AccountHold, Attention, DaemonInfo, NextPost, Status, status
from scheduler.service.toolkit import SiteReport, build_toolkit, toolkit_server, toolkit_url

__all__ = [
    "DEAD_AFTER",
    "AccountCheck",
    "AccountHold",
    "Approval",
    "Attention",
    "Cancellation",
    "DaemonInfo",
    "DemoReady",
    "LogEntry",
    "NextPost",
    "OneOff",
    "PlanReport",
    "PostLine",
    "PostLog",
    "Queued",
    "Report",
    "Resolution",
    "Reviewed",
    "SchemaVersion",
    "SiteReport",
    "Status",
    "Validation",
    "approve",
    "build_toolkit",
    "cancel",
    "check_accounts",
    "demo",
    "demo_database",
    "list_posts",
    "open_database",
    "plan",
    "post_log",
    "preview",
    "queue_post",
    "rehearse",
    "resume_account",
    "review",
    "run_daemon",
    "run_once",
    "schema_version",
    "status",
    "toolkit_server",
    "toolkit_url",
    "upgrade_database",
    "validate",
    "worker",
]
