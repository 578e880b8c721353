"""Settings, built once at the edge from the environment (and `.env`).

Core classes take a `Settings` (or plain arguments); nothing else reads `os.environ`.
Every variable is documented in `.env.example`.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from content.errors import TminusError
from content.platforms import Credentials
from scheduler import defaults

C = TypeVar("C", bound=Credentials)

SETTINGS_VARS = {
    "TMINUS_DATABASE_URL": "database URL (default sqlite:///tminus.db)",
    "TMINUS_DRYRUN_OUTBOX": "file the dry-run adapter appends posts to (default outbox.jsonl)",
    "TMINUS_POLL_SECONDS": "longest the daemon sleeps between checks (default 2)",
    "TMINUS_LEASE_SECONDS": "how long a claimed post belongs to one daemon (default 120)",
    "TMINUS_REQUEST_TIMEOUT": "timeout of every platform request, seconds (default 10)",
    "TMINUS_MAX_ATTEMPTS": "attempts before a post fails (default 8)",
    "TMINUS_CONCURRENCY": "most accounts whose posts go out side by side (default 256)",
    "TMINUS_SEND_PROCESS": "processes the daemon's requests are made in (default: the host's cores, shared "
                           "by its daemons; 0: none)",
    "TMINUS_DRY_RUN": "1: only dryrun accounts' posts, through the dry-run adapter (default 0)",
    "TMINUS_LOG_LEVEL": "DEBUG, INFO, WARNING or ERROR (default INFO)",
    "TMINUS_TEST_CRASH_AT": "crash tests only: POINT:N kills the daemon at the Nth POINT",
    "TMINUS_TEST_CLOCK_OFFSET_FILE": "clock tests only: a file of seconds added to this host's clock",
    "TMINUS_WEB_SECRET": "key that signs the web dashboard's cookies (default: made once, in the database)",
    "TMINUS_WEB_URL": "the dashboard's public address; https://... makes its cookies Secure",
    "TMINUS_WEB_PROXIES": "addresses of proxies whose X-Forwarded-For/-Proto are trusted (default 127.0.0.1)",
    "TMINUS_NOTIFY": "Apprise URLs alerts go to, separated by spaces or commas (default: none)",
    "TMINUS_NOTIFY_EVERY": "at most one alert per kind and campaign this often, seconds (default 300)",
    "TMINUS_LOG_FORMAT": "text or json: one JSON object per log line (default text)",
    "TMINUS_ENGAGEMENT_X": "1: the report reads X posts' likes/reposts/replies (X bills reads; default 0)",
    "TMINUS_METRICS_TOKEN": "bearer token /metrics asks for (default: none, /metrics answers anyone)",
}
LOG_FORMATS = ("text", "json")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")

# The largest value each number may have: beyond these a setting is a typo, and a
# sleep of 1e308 s overflows the clock ("timeout value is too large").
_MAXIMA = {"TMINUS_POLL_SECONDS": 3600, "TMINUS_LEASE_SECONDS": 86400,
           "TMINUS_REQUEST_TIMEOUT": 3600, "TMINUS_MAX_ATTEMPTS": 1000,
           "TMINUS_CONCURRENCY": 4096, "TMINUS_SEND_PROCESS": 16, "TMINUS_NOTIFY_EVERY": 86400}


@dataclass(frozen=True)
class Settings:
    database_url: str = defaults.DATABASE_URL
    dryrun_outbox: Path = Path(defaults.DRYRUN_OUTBOX)
    poll_seconds: float = defaults.POLL_SECONDS
    lease_seconds: float = defaults.LEASE_SECONDS
    request_timeout: float = defaults.REQUEST_TIMEOUT_SECONDS
    max_attempts: int = defaults.MAX_ATTEMPTS
    concurrency: int = defaults.CONCURRENCY
    # child processes requests are made in; None (TMINUS_SEND_PROCESS unset): this
    # daemon's share of the host's cores, among the daemons alive on it (`publishers`)
    send_process: int | None = None
    dry_run: bool = False
    log_level: str = "INFO"
    # crash tests only: ("after_claim" | "after_answer" | "before_commit", n) -> the
    # daemon SIGKILLs itself the n-th time it reaches that point
    crash_at: tuple[str, int] | None = None
    # clock tests only: a file holding seconds to add to the host's wall clock
    clock_offset_file: Path | None = None
    # the web dashboard: its cookie-signing key (None: kept in the database), its public
    # address (https: cookies are Secure), the proxies whose forwarded headers count
    web_secret: str | None = field(default=None, repr=False)
    web_url: str | None = None
    web_proxies: str = "127.0.0.1"
    # alerts (scheduler.alerts): the Apprise URLs (they hold tokens: never printed) and
    # the shortest time between two messages of one kind about one campaign
    notify_urls: tuple[str, ...] = field(default=(), repr=False)
    notify_every: float = defaults.NOTIFY_EVERY_SECONDS
    log_format: str = "text"
    metrics_token: str | None = field(default=None, repr=False)
    # the campaign report reads X's counts only when asked to: X bills every read
    engagement_x: bool = False
    # TMINUS_<PREFIX>_<SUFFIX> credentials, kept apart so they are never printed
    env: Mapping[str, str] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if self.poll_seconds <= 0 or self.lease_seconds <= 0 or self.request_timeout <= 0:
            raise TminusError("TMINUS_POLL_SECONDS, TMINUS_LEASE_SECONDS and "
                              "TMINUS_REQUEST_TIMEOUT must be positive numbers")
        if self.max_attempts < 1:
            raise TminusError("TMINUS_MAX_ATTEMPTS must be a whole number ≥ 1")
        if self.lease_seconds <= self.request_timeout:
            raise TminusError("TMINUS_LEASE_SECONDS must be longer than TMINUS_REQUEST_TIMEOUT: "
                              "a claimed post's lease has to outlast a request")
        if self.concurrency < 1:
            raise TminusError("TMINUS_CONCURRENCY must be a whole number ≥ 1")
        if self.send_process is not None and self.send_process < 0:
            raise TminusError("TMINUS_SEND_PROCESS must be a whole number ≥ 0")
        if self.log_level not in LOG_LEVELS:
            raise TminusError(f"TMINUS_LOG_LEVEL={self.log_level!r}: write one of "
                              f"{', '.join(LOG_LEVELS)}")
        if self.log_format not in LOG_FORMATS:
            raise TminusError(f"TMINUS_LOG_FORMAT={self.log_format!r}: write text or json")
        if self.notify_every < 0:
            raise TminusError("TMINUS_NOTIFY_EVERY must be a number of seconds ≥ 0")
        if self.web_secret is not None and len(self.web_secret) < 32:
            raise TminusError("TMINUS_WEB_SECRET must be at least 32 characters (e.g. the output "
                              "of `python3 -c 'import secrets; print(secrets.token_urlsafe(48))'`)")

    @property
    def web_https(self) -> bool:
        """The dashboard is reached over TLS (behind a proxy): its cookies are Secure."""
        return bool(self.web_url and self.web_url.startswith("https://"))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = dict(os.environ if environ is None else environ)
        return cls(
            database_url=env.get("TMINUS_DATABASE_URL") or defaults.DATABASE_URL,
            dryrun_outbox=Path(env.get("TMINUS_DRYRUN_OUTBOX") or defaults.DRYRUN_OUTBOX),
            poll_seconds=_number(env, "TMINUS_POLL_SECONDS", defaults.POLL_SECONDS),
            lease_seconds=_number(env, "TMINUS_LEASE_SECONDS", defaults.LEASE_SECONDS),
            request_timeout=_number(env, "TMINUS_REQUEST_TIMEOUT",
                                    defaults.REQUEST_TIMEOUT_SECONDS),
            max_attempts=int(_number(env, "TMINUS_MAX_ATTEMPTS", defaults.MAX_ATTEMPTS)),
            concurrency=int(_number(env, "TMINUS_CONCURRENCY", defaults.CONCURRENCY)),
            send_process=(int(_number(env, "TMINUS_SEND_PROCESS", defaults.SEND_PROCESSES))
                          if (env.get("TMINUS_SEND_PROCESS") or "").strip() else None),
            dry_run=env.get("TMINUS_DRY_RUN", "0").strip().lower() in ("1", "true", "yes"),
            log_level=(env.get("TMINUS_LOG_LEVEL") or "INFO").strip().upper(),
            crash_at=_crash_at(env.get("TMINUS_TEST_CRASH_AT")),
            clock_offset_file=(Path(env["TMINUS_TEST_CLOCK_OFFSET_FILE"])
                               if env.get("TMINUS_TEST_CLOCK_OFFSET_FILE") else None),
            web_secret=env.get("TMINUS_WEB_SECRET") or None,
            web_url=_web_url(env.get("TMINUS_WEB_URL")),
            web_proxies=(env.get("TMINUS_WEB_PROXIES") or "127.0.0.1").strip(),
            notify_urls=notify_urls(env.get("TMINUS_NOTIFY")),
            notify_every=_number(env, "TMINUS_NOTIFY_EVERY", defaults.NOTIFY_EVERY_SECONDS),
            log_format=(env.get("TMINUS_LOG_FORMAT") or "text").strip().lower(),
            metrics_token=(env.get("TMINUS_METRICS_TOKEN") or "").strip() or None,
            engagement_x=env.get("TMINUS_ENGAGEMENT_X", "0").strip().lower() in ("1", "true", "yes"),
            env={k: v for k, v in env.items() if k.startswith("TMINUS_")},
        )

    def credentials(self, prefix: str, kind: type[C]) -> C:
        """`kind` (a platform's credentials dataclass) read from TMINUS_<prefix>_<FIELD>;
        a missing required one is a one-line error naming the variable (never a value)."""
        values: dict[str, str | None] = {}
        for var in kind.variables():
            name = var.variable(prefix)
            value = self.env.get(name, "").strip()
            if var.required and not value:
                raise TminusError(f"{name} is not set ({var.help}); add it to .env "
                                  "(see .env.example)")
            values[var.suffix.lower()] = value or None
        return kind(**values)


CRASH_POINTS = ("after_claim", "after_answer", "before_commit")


def _crash_at(raw: str | None) -> tuple[str, int] | None:
    if not raw:
        return None
    point, _, n = raw.partition(":")
    if point not in CRASH_POINTS or not n.isdigit() or int(n) < 1:
        raise TminusError(f"TMINUS_TEST_CRASH_AT={raw!r}: write POINT:N with POINT one of "
                          f"{', '.join(CRASH_POINTS)}")
    return point, int(n)


def notify_urls(raw: str | None) -> tuple[str, ...]:
    """TMINUS_NOTIFY split into its URLs (Apprise checks each one: scheduler.alerts)."""
    return tuple(u for u in (raw or "").replace(",", " ").split() if u)


def _web_url(raw: str | None) -> str | None:
    if not raw:
        return None
    url = raw.strip().rstrip("/")
    if not url.startswith(("https://", "http://")) or url[-3:] == "://":
        raise TminusError(f"TMINUS_WEB_URL={raw!r}: write the address people open, e.g. "
                          "https://tminus.example.org")
    return url


def _number(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise TminusError(f"{name}={raw!r} is not a number") from None
    if not math.isfinite(value) or abs(value) > _MAXIMA[name]:
        raise TminusError(f"{name}={raw!r} is out of range; at most {_MAXIMA[name]:,} "
                          f"(default {default:g})")
    return value
