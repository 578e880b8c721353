"""What every benchmark shares: sizes, figures, timing, percentiles, memory, test data.

A benchmark module has `run(sizes, workdir) -> list[Figure]`. A `Figure` is one line of
the table: tminus's number, the baselines' numbers for the same work, the target and
whether it was met. Raw numbers go in `raw` and end up in the JSON file.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import platform
import resource
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
TMINUS = str(Path(sys.executable).parent / "tminus")


# -- sizes -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Sizes:
    """How big each benchmark runs. FULL is the issue's sizes; QUICK keeps the harness
    exercised in the test suite (seconds, not minutes)."""

    name: str
    plan_accounts: int          # plan: accounts x fire times posts
    plan_fires: int
    plan_baseline: int          # APScheduler add_job is timed on this many, then extrapolated
    start_queues: tuple[int, ...]   # posts queued for the start benchmark (last one is the headline)
    start_accounts: int
    start_due: int              # of which due at start: the first tick has real work
    aps_start_jobs: int         # jobs in APScheduler's store for its start figure
    accuracy_posts: int
    accuracy_span: float        # seconds over which the accuracy posts are scattered
    burst_posts: int
    burst_accounts: int
    pg_daemons: tuple[int, ...]
    rehearse_repeats: int
    latency_accounts: tuple[int, int]   # latency: the large and the small burst (accounts)
    latency_pg_daemons: tuple[int, ...]
    latency_baseline: bool = True       # latency: APScheduler's runs too
    latency_side_by_side: bool = False  # latency: every run at once (quick: figures disturbed)


FULL = Sizes("full", plan_accounts=100, plan_fires=1000, plan_baseline=5000,
             start_queues=(10_000, 1_000_000), start_accounts=1000, start_due=50,
             aps_start_jobs=1_000_000, accuracy_posts=200, accuracy_span=25.0,
             burst_posts=10_000, burst_accounts=1000, pg_daemons=(1, 2, 4),
             rehearse_repeats=3, latency_accounts=(1000, 200), latency_pg_daemons=(2, 4))
QUICK = Sizes("quick", plan_accounts=20, plan_fires=300, plan_baseline=100,
              start_queues=(1_000, 5_000), start_accounts=50, start_due=10,
              aps_start_jobs=5_000, accuracy_posts=10, accuracy_span=1.5,
              burst_posts=300, burst_accounts=30, pg_daemons=(1, 2, 4),
              rehearse_repeats=1, latency_accounts=(6, 3), latency_pg_daemons=(2,),
              latency_baseline=False, latency_side_by_side=True)


# -- figures ---------------------------------------------------------------------------


@dataclass
class Baseline:
    value: float | None
    unit: str
    note: str = ""          # how it was obtained when not measured plainly (extrapolated...)


@dataclass
class Figure:
    key: str                # stable name, e.g. "plan.seconds" (the test checks these)
    what: str
    value: float | None
    unit: str
    target: str = ""
    met: bool | None = None     # None: reported, no target
    baselines: dict[str, Baseline] = field(default_factory=dict)
    note: str = ""
    raw: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


BASELINE_NAMES = {
    "apscheduler": "APScheduler jobstore",
    "polling": "polling 30 s",
}


# -- timing and statistics -------------------------------------------------------------


class Stopwatch:
    """`with Stopwatch() as sw: ...` then `sw.seconds`."""

    def __enter__(self) -> Stopwatch:
        self.start = time.perf_counter()
        self.seconds = 0.0
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.start


def percentile(values: Sequence[float], p: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    if not values:
        return math.nan
    xs = sorted(values)
    k = (len(xs) - 1) * p / 100
    lo, hi = math.floor(k), math.ceil(k)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def spread(values: Sequence[float]) -> dict[str, float]:
    """p50/p95/p99/max/min/mean of `values` (a dict for the JSON file)."""
    if not values:
        return {"n": 0}
    return {"n": len(values), "min": min(values), "p50": percentile(values, 50),
            "p95": percentile(values, 95), "p99": percentile(values, 99), "max": max(values),
            "mean": sum(values) / len(values)}


def median(values: Sequence[float]) -> float:
    return percentile(values, 50)


# -- memory ----------------------------------------------------------------------------


def peak_rss_mb() -> float:
    """Peak resident memory of this process: VmHWM, which belongs to this program alone
    (ru_maxrss also counts the parent's memory copied at fork, before exec)."""
    mine = process_hwm_mb(os.getpid())
    return mine if mine is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def process_hwm_mb(pid: int) -> float | None:
    """Peak resident memory (VmHWM) of another running process, from /proc."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


# -- machine ---------------------------------------------------------------------------


def machine_info() -> dict[str, Any]:
    import apscheduler
    import sqlalchemy
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_mb = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_mb = int(line.split()[1]) // 1024
    except OSError:
        pass
    return {
        "cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "cpu": cpu,
        "memory_mb": mem_mb,
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "sqlite": sqlite3.sqlite_version,
        "sqlalchemy": sqlalchemy.__version__,
        "apscheduler": apscheduler.__version__,
        "platform": platform.platform(),
        "load_average": os.getloadavg(),
        "code": _git(),
    }


def _git() -> dict[str, Any]:
    """Which code was measured: the commit, and the files changed since (others may be
    editing the working tree while the benchmark runs)."""
    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True,
                                  timeout=10).stdout
        except (OSError, subprocess.SubprocessError):
            return ""
    changed = [line[3:] for line in git("status", "--porcelain").splitlines() if line.strip()]
    return {"commit": git("rev-parse", "HEAD").strip(), "changed_files": changed}


# -- child processes -------------------------------------------------------------------


def run_child(module: str, *args: str, env: dict[str, str] | None = None,
              timeout: float = 900) -> dict[str, Any]:
    """Run `python -m MODULE ARGS` in a fresh interpreter (so its memory and imports are
    its own) and return the JSON object it prints as its last line."""
    done = subprocess.run([PYTHON, "-m", module, *args], cwd=ROOT, env=env or child_env(),
                          capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"{module} {' '.join(args)} failed ({done.returncode}):\n"
                           f"{done.stderr[-3000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def child_env(**tminus: str) -> dict[str, str]:
    """The environment without any TMINUS_* of the caller, plus the given settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TMINUS_")}
    env.update({f"TMINUS_{k.upper()}": v for k, v in tminus.items()})
    env["PYTHONPATH"] = str(ROOT)
    return env


def print_json(data: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(data) + "\n")
    sys.stdout.flush()


# -- outboxes --------------------------------------------------------------------------


def read_lines(paths: Iterable[Path]) -> list[dict[str, Any]]:
    out = []
    for path in paths:
        if not path.exists():
            continue
        for raw in path.read_text(encoding="utf-8").splitlines():
            if raw.strip():
                out.append(json.loads(raw))
    return out


def count_lines(paths: Iterable[Path]) -> int:
    n = 0
    for path in paths:
        try:
            with path.open("rb") as fh:
                n += sum(chunk.count(b"\n") for chunk in iter(lambda: fh.read(1 << 20), b""))
        except FileNotFoundError:
            pass
    return n


def lateness(lines: Iterable[dict[str, Any]]) -> list[float]:
    """Seconds between each line's "at" (when it was sent) and its "due"."""
    return [(datetime.fromisoformat(x["at"]) - datetime.fromisoformat(x["due"])).total_seconds()
            for x in lines]


def wait_for_lines(paths: Sequence[Path], n: int, *, timeout: float,
                   alive: Callable[[], bool] = lambda: True) -> bool:
    """Wait until the outboxes hold `n` lines in all; False on timeout or death."""
    limit = time.monotonic() + timeout
    while time.monotonic() < limit:
        if count_lines(paths) >= n:
            return True
        if not alive():
            return False
        time.sleep(0.05)
    return count_lines(paths) >= n


def next_whole_second(after: float) -> datetime:
    """The first whole UTC second at least `after` seconds from now."""
    at = datetime.now(UTC) + timedelta(seconds=after)
    return at.replace(microsecond=0) + timedelta(seconds=1)


# -- test data -------------------------------------------------------------------------


@contextmanager
def workdir(parent: Path, name: str) -> Iterator[Path]:
    import shutil
    import tempfile
    path = Path(tempfile.mkdtemp(prefix=f"tminus-bench-{name}-", dir=parent))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def table(model: Any) -> Any:
    """The core Table of a model (for inserts and updates that skip the ORM)."""
    return model.__table__


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def fresh_engine(url: str) -> Any:
    """A new tminus database at the schema head."""
    from scheduler.db import make_engine, upgrade
    engine = make_engine(url)
    upgrade(engine)
    return engine


def post_text(account: int, i: int) -> str:
    return f"acct{account:04d} #{i}: the deadline is coming, call 202-555-0100 today #Bench"


@dataclass(frozen=True)
class Queued:
    """A post as the benchmarks seed it: straight into the table, already approved."""

    post_id: int
    account: int
    due: datetime


def seed_queue(engine: Any, dues: Sequence[datetime], *, accounts: int,
               deadline: datetime | None = None, chunk: int = 50_000,
               text: Callable[[int, int], str] = post_text,
               platform: str = "dryrun") -> list[Queued]:
    """Insert one campaign, `accounts` accounts (dry-run ones unless `platform`) and one
    approved, queued post per entry of `dues` (post i on account i % accounts), straight into the tables: no
    planner, no event rows. Post ids are 1..n in a fresh database. `text(account,
    post_id)` is each post's text."""
    import sqlalchemy as sa

    from scheduler.models import Account, Campaign, Post
    now = datetime.now(UTC)
    last = max(dues, default=now)
    deadline = deadline or max(now, last) + timedelta(days=3)
    with engine.begin() as conn:
        campaign_id = conn.execute(
            sa.insert(table(Campaign)).returning(table(Campaign).c.id),
            {"slug": f"bench-{os.getpid()}-{time.monotonic_ns()}", "title": "Benchmark",
                 "deadline": deadline, "timezone": "UTC", "hashtags": ["#Bench"], "account_names": [],
                 "created_at": now, "updated_at": now}).scalar_one()
        first_account = conn.execute(
            sa.select(sa.func.coalesce(sa.func.max(table(Account).c.id), 0))).scalar_one()
        conn.execute(sa.insert(table(Account)), [
            {"name": f"bench{first_account + a:05d}", "platform": platform, "credentials": "",
             "tier": "default"}
            for a in range(accounts)])
        first_post = conn.execute(
            sa.select(sa.func.coalesce(sa.func.max(table(Post).c.id), 0))).scalar_one()
    queued = [Queued(first_post + i + 1, i % accounts, due) for i, due in enumerate(dues)]
    if engine.dialect.name == "sqlite":
        _seed_sqlite(engine, queued, campaign_id, first_account, now, chunk, text, platform)
    else:
        _seed_generic(engine, queued, campaign_id, first_account, now, chunk, text, platform)
        with engine.begin() as conn:  # ids were given explicitly: move the sequence on
            conn.exec_driver_sql("SELECT setval(pg_get_serial_sequence('post', 'id'), "
                                 "(SELECT max(id) FROM post))")
    return queued


@dataclass(frozen=True)
class _BenchAccount:
    name: str
    platform: str = "dryrun"
    credentials: str = ""
    handle: str | None = None


def sealed_approval(text: str, account: str, platform: str = "dryrun",
                    credentials: str = "") -> tuple[dict[str, Any], str]:
    """What an approval of `text` on that account records (scheduler.approval): the
    record and its hash, as `approve` would store them."""
    from scheduler import approval
    sealed = approval.manifest(text=text, options={}, parent_id=None, media=(),
                               account=_BenchAccount(account, platform, credentials))
    return sealed, approval.digest(sealed)


def _row(q: Queued, campaign_id: int, first_account: int, now: datetime,
         text_of: Callable[[int, int], str] = post_text, platform: str = "dryrun") -> dict[str, Any]:
    text = text_of(q.account, q.post_id)
    digest = hashlib.sha256(text.encode()).hexdigest()
    sealed, sealed_hash = sealed_approval(text, f"bench{first_account + q.account:05d}", platform)
    return {"id": q.post_id, "campaign_id": campaign_id, "account_id": first_account + q.account + 1,
                "plan_key": f"bench@{q.post_id}", "post_key": "bench", "origin": "plan", "state": "queued",
                "text": text, "text_hash": digest, "approved_hash": sealed_hash,
                "approved": sealed, "approved_by": "bench",
                "approved_at": now, "due_at": q.due, "not_after": q.due + timedelta(hours=2),
                "next_attempt_at": q.due, "idempotency_key": f"bench{campaign_id:05d}{q.post_id:022d}",
                "attempt": 0, "options": {}, "warnings": [], "length": len(text), "length_limit": 280,
                "created_at": now, "updated_at": now}


def _seed_generic(engine: Any, queued: Sequence[Queued], campaign_id: int, first_account: int,
                  now: datetime, chunk: int,
                  text: Callable[[int, int], str] = post_text, platform: str = "dryrun") -> None:
    """SQLAlchemy core: executemany of plain dicts through the models' own types."""
    import sqlalchemy as sa

    from scheduler.models import Post
    with engine.begin() as conn:
        for k in range(0, len(queued), chunk):
            conn.execute(sa.insert(table(Post)),
                         [_row(q, campaign_id, first_account, now, text, platform)
                          for q in queued[k:k + chunk]])


def _seed_sqlite(engine: Any, queued: Sequence[Queued], campaign_id: int, first_account: int,
                 now: datetime, chunk: int, text: Callable[[int, int], str] = post_text,
                 platform: str = "dryrun") -> None:
    """The same rows through the DB-API's executemany with values already in SQLite's
    storage form (a million rows in seconds instead of minutes). The first chunk goes
    through SQLAlchemy's own types and the form of everything after it is checked
    against it, so a change of column types fails loudly here."""
    if not queued:
        return
    head, rest = queued[:1], queued[1:]
    _seed_generic(engine, head, campaign_id, first_account, now, chunk, text, platform)
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        cur.execute("SELECT * FROM post WHERE id = ?", (head[0].post_id,))
        columns = [d[0] for d in cur.description]
        stored = dict(zip(columns, cur.fetchone(), strict=False))
        sample = _sqlite_values(_row(head[0], campaign_id, first_account, now, text, platform))
        for name, value in stored.items():
            if name in sample and sample[name] != value:
                raise RuntimeError(f"bench seeding: column {name} is stored as {value!r}, the fast "
                                   f"path would write {sample[name]!r}; update bench/common.py")
        names = [c for c in columns if c in sample]
        sql = f"INSERT INTO post ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})"
        cur.execute("BEGIN")
        for k in range(0, len(rest), chunk):
            rows = [_sqlite_values(_row(q, campaign_id, first_account, now, text, platform))
                    for q in rest[k:k + chunk]]
            cur.executemany(sql, [tuple(r[c] for c in names) for r in rows])
        cur.execute("COMMIT")
        cur.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        raw.close()


def _sqlite_values(row: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in row.items():
        if isinstance(v, datetime):
            v = v.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
        elif isinstance(v, dict | list):
            v = json.dumps(v)
        out[k] = v
    return out


# -- campaign files --------------------------------------------------------------------


def write_campaign(folder: Path, *, accounts: int, fires: int, per_spec: int = 10,
                   deadline: str = "2099-01-20T12:00:00-05:00") -> int:
    """A campaign of `accounts` dry-run accounts x `fires` fire times (a cron every five
    minutes before the deadline), accounts grouped `per_spec` to a [[posts]] entry, each
    text unique per account and time. Returns the number of posts it expands to."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["[campaign]", 'slug = "bench"', 'title = "Benchmark campaign"',
             f"deadline = {deadline}", 'timezone = "America/New_York"',
             'hashtags = ["#Bench", "#HereToStay"]', "", "[vars]",
             'call_line = "202-555-0100"', ""]
    for a in range(accounts):
        lines += [f"[accounts.acct{a:04d}]", 'platform = "dryrun"', ""]
    for g in range(0, accounts, per_spec):
        names = ", ".join(f'"acct{a:04d}"' for a in range(g, min(g + per_spec, accounts)))
        lines += ["[[posts]]", f'key = "countdown-{g // per_spec}"',
                  f'template = "countdown{(g // per_spec) % 2}.txt.j2"', f"accounts = [{names}]",
                  f'schedule = {{ cron = "*/5 * * * *", from = "T-{5 * fires}m" }}',
                  'expires = "1h"', ""]
    (folder / "campaign.toml").write_text("\n".join(lines), encoding="utf-8")
    (folder / "countdown0.txt.j2").write_text(
        "{{ account }}: {{ minutes_left }} minutes ({{ time_left }}) left.\n"
        "Call {{ call_line }} today. {{ hashtags }}\n", encoding="utf-8")
    (folder / "countdown1.txt.j2").write_text(
        "{% if hours_left > 24 %}{{ days_left }} {{ days_left | plural('day') }}{% else %}"
        "{{ hours_left }} hours{% endif %} to go ({{ minutes_left }} min) - {{ account }} "
        "asks you to call {{ call_line }}. {{ hashtags }}\n", encoding="utf-8")
    return accounts * fires


def fmt(value: float | None, unit: str) -> str:
    """A number for the table, in a readable unit."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if unit == "s":
        if abs(value) < 1:
            return f"{value * 1000:.1f} ms"
        return f"{value:.2f} s"
    if unit == "MB":
        return f"{value:.0f} MB"
    if unit == "posts/s":
        return f"{value:,.0f} posts/s"
    if unit == "x":
        return f"{value:,.0f}×"
    if unit == "count":
        return f"{value:,.0f}"
    return f"{value:g} {unit}"
