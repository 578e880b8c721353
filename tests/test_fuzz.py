"""A seeded fuzz of tminus's inputs: a valid campaign folder mutated (values replaced
with hostile ones, keys dropped or invented, the TOML text corrupted, templates given
runaway loops, huge formats, includes of files they must not reach, bytes that are not
UTF-8) and the command line's arguments mutated, against a planned database.

For every case exactly this must hold: exit status 0 or 2; never a traceback; an answer
within a per-case timeout (the worker process running the cases is killed when one
takes longer: that bounds a hang, it does not measure speed); and on 2, nothing
written — the database's content, the outbox and the folder's files are as before.

    TMINUS_FUZZ_CASES=2000 TMINUS_FUZZ_SEED=7 pytest tests/test_fuzz.py   # a longer run

A failure names the seed and case number; the same pair replays the same case.
"""

from __future__ import annotations

import json
import os
import random
import select
import shutil
import sqlite3
import subprocess
import sys
import time as clock
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

import pytest
import tomli_w

from tests.conftest import ROOT

CASES = int(os.environ.get("TMINUS_FUZZ_CASES", "100"))
SEED = int(os.environ.get("TMINUS_FUZZ_SEED", "2017"))
CASE_TIMEOUT = float(os.environ.get("TMINUS_FUZZ_TIMEOUT", "60"))
EXAMPLE = ROOT / "examples" / "potuspardon"
SLUG = "potuspardon"

HOSTILE_TEXT = [
    "", " ", "x" * 5000, "Sign \x1b[8mhidden\x1b[28m", "exe.\u202etxt", "\ufeffstart", "a\tb",
    "\udcff", "[/]", "Vote [yes] on [bold]Prop 5", "../../etc/passwd", "/etc/passwd",
    "campaign.toml", ".env", "America", "Mars/Olympus", "T-999999999d", "T+1h", "T-0",
    "+99999999999d", "999999999d", "99999999999999999999d", "0 12 * * 5-1", "* * * * *",
    "0 0 31 2 *", "61 * * * *", "Spanish please", "xx", "9" * 30, "-1", "now", "NaN",
    "2017-01-19T09:00:00", "0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59",
    "#", "#Test tag", "👩\u200d💻", "🏴\U000e0067\U000e0062\U000e0065\U000e006e\U000e0067\U000e007f",
    "{{ days_left ** 99999999 }}", "{% include 'campaign.toml' %}", "{{ '%0999999999d' % 1 }}",
    "{{ undefined_thing }}", "{% if %}", "{{ ''.__class__.__mro__ }}",
]
HOSTILE_VALUES: list[Any] = [
    0, -1, 1, 2**63 - 1, -(2**63), 1.5, float("inf"), float("nan"), True, False, [], [[]],
    [["test"]], {}, {"a": {"b": 1}}, datetime(1, 1, 1), datetime(9999, 12, 31, 23, 59),
    datetime(2099, 1, 1, 12, 0), date(2020, 1, 1), time(9, 0), ["x"] * 50,
]
TEMPLATE_SNIPPETS = [
    "{% for i in range(100000) %}{% for j in range(100000) %}{{ i }}{% endfor %}{% endfor %}",
    "{% for i in range(10000) %}{% for j in range(10000) %}{% endfor %}{% endfor %}",
    "{{ days_left ** 100000000 }}", "{{ '%0999999999d' % 1 }}", "{{ 'a' * 4000000000 }}",
    "{{ lipsum(1000, min=1000, max=1000) }}", "{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}",
    "{% include 'countdown.txt.j2' %}", "{% include 'campaign.toml' %}", "{% include '../x' %}",
    "{% include '/etc/passwd' %}", "{% include name %}", "{% if true %}" * 300,
    "{{ " + "(" * 5000 + "1" + ")" * 5000 + " }}", "{{ " + "-" * 3000 + "1 }}",
    "{{ '{:>999999999}'.format(1) }}", "{{ 'a'|center(999999999) }}", "{{ [1]|batch(999999999, 0)|list }}",
    "{% set ns = namespace(s='ab') %}{% for i in range(60) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}", "{{ cycler.__init__.__globals__ }}",
    "{% for x in [1] recursive %}{{ loop([x]) }}{% endfor %}", "{{ time_left_in('fr') }}",
    "{{ 1/0 }}", "{{ due.strftime('%999999999Y') }}", "{{ x }", "{% endif %}", "{#", "\x1b[8m",
    "\ufeff", "\t", "", "{{ hashtags * 3 }}", "{{ (days_left|string) * 99999 }}",
]


# -- the worker ---------------------------------------------------------------------------


class Worker:
    """A process running cases in-process; killed and restarted when one hangs."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen[str] | None = None

    def _start(self) -> subprocess.Popen[str]:
        env = {**os.environ, "COLUMNS": "200", "PYTHONPATH": str(ROOT)}
        return subprocess.Popen([sys.executable, "-m", "tests.fuzzworker"], cwd=ROOT, env=env,
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                encoding="utf-8", errors="surrogateescape")

    def run(self, args: list[str], cwd: Path, env: dict[str, str]) -> dict[str, Any] | None:
        """The case's result, or None if it did not answer within CASE_TIMEOUT."""
        if self.proc is None:
            self.proc = self._start()
        assert self.proc.stdin and self.proc.stdout
        self.proc.stdin.write(json.dumps({"args": args, "cwd": str(cwd), "env": env}) + "\n")
        self.proc.stdin.flush()
        ready, _, _ = select.select([self.proc.stdout], [], [], CASE_TIMEOUT)
        if not ready:
            self.close()
            return None
        line = self.proc.stdout.readline()
        if not line:   # the worker died (a hard crash of the interpreter)
            self.close()
            return {"code": None, "out": "", "err": "", "crash": "the worker process died"}
        result: dict[str, Any] = json.loads(line)
        return result

    def close(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None


@pytest.fixture(scope="module")
def worker() -> Iterator[Worker]:
    w = Worker()
    yield w
    w.close()


# -- a valid campaign, and mutations of it --------------------------------------------------


def valid_campaign() -> tuple[dict[str, Any], dict[str, str]]:
    import tomllib
    data = tomllib.loads((EXAMPLE / "campaign.toml").read_text("utf-8"))
    data["campaign"]["deadline"] = datetime.fromisoformat("2099-01-20T12:00:00-05:00")
    templates = {p.name: p.read_text("utf-8") for p in EXAMPLE.glob("*.j2")}
    return data, templates


def _paths(node: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield path
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _paths(v, (*path, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _paths(v, (*path, i))


def _hostile(rng: random.Random) -> Any:
    if rng.random() < 0.5:
        return rng.choice(HOSTILE_TEXT)
    value = rng.choice(HOSTILE_VALUES)
    if rng.random() < 0.05:
        for _ in range(rng.randint(15, 40)):
            value = [value]
    return value


def mutate_data(rng: random.Random, data: dict[str, Any]) -> str:
    """Change one place of the parsed campaign; returns what was done."""
    path = rng.choice([p for p in _paths(data) if p])
    parent = data
    for step in path[:-1]:
        parent = parent[step]
    last = path[-1]
    kind = rng.choice(["replace", "replace", "replace", "delete", "unknown key", "duplicate"])
    if kind == "delete":
        del parent[last]
    elif kind == "unknown key" and isinstance(parent, dict):
        parent[rng.choice(["shedule", "x" * 300, "\x1b", "key ", "accounts2"])] = _hostile(rng)
    elif kind == "duplicate" and isinstance(parent, list):
        parent.append(parent[last])
    else:
        parent[last] = _hostile(rng)
    return f"{kind} {path!r}"


def mutate_text(rng: random.Random, text: str) -> tuple[str, str]:
    """Corrupt serialized text: a character, a cut, a byte that is not UTF-8 (held as a
    surrogate escape, written back as the byte)."""
    at = rng.randrange(len(text) + 1)
    kind = rng.choice(["insert", "delete", "truncate", "bom", "latin-1", "nul"])
    if kind == "insert":
        return text[:at] + rng.choice(["[", "]", "{", '"', "=", "\n", "\x1b", "[[posts]]\n"]) + text[at:], kind
    if kind == "delete":
        return text[:at] + text[at + rng.randint(1, 40):], kind
    if kind == "truncate":
        return text[:at], kind
    if kind == "bom":
        return "\ufeff" + text, kind
    if kind == "nul":
        return text[:at] + "\x00" + text[at:], kind
    return text[:at] + "\udce9\udcff" + text[at:], kind


def mutate_template(rng: random.Random, templates: dict[str, str]) -> tuple[str, str, str]:
    name = rng.choice(sorted(templates))
    text = templates[name]
    kind = rng.choice(["insert", "insert", "replace", "corrupt", "huge"])
    snippet = rng.choice(TEMPLATE_SNIPPETS)
    if kind == "insert":
        at = rng.randrange(len(text) + 1)
        return name, text[:at] + snippet + text[at:], f"{kind} {snippet[:40]!r}"
    if kind == "replace":
        return name, snippet + " #POTUSpardon", f"{kind} {snippet[:40]!r}"
    if kind == "huge":
        return name, text + "x" * rng.choice([50_000, 200_000]), kind
    corrupted, how = mutate_text(rng, text)
    return name, corrupted, f"corrupt {how}"


# -- one case ----------------------------------------------------------------------------


@dataclass
class Case:
    args: list[str]
    folder: Path
    what: str


def make_case(rng: random.Random, root: Path, n: int, ids: list[int]) -> Case:
    """A case directory holding a (mutated) campaign folder, and the arguments."""
    folder = root / f"case{n}" / "camp"
    folder.mkdir(parents=True)
    data, templates = valid_campaign()
    what: list[str] = []
    raw: str | None = None
    campaign_mutation = rng.random() < 0.7
    if campaign_mutation:
        for _ in range(rng.choice([1, 1, 2, 3])):
            roll = rng.random()
            if roll < 0.55:
                what.append(mutate_data(rng, data))
            elif roll < 0.9:
                name, text, how = mutate_template(rng, templates)
                templates[name] = text
                what.append(f"{name}: {how}")
            else:
                raw, how = mutate_text(rng, _dump(data))
                what.append(f"campaign.toml text: {how}")
    toml = raw if raw is not None else _dump(data)
    _write(folder / "campaign.toml", toml)
    for name, text in templates.items():
        _write(folder / name, text)
    if rng.random() < 0.05:
        (folder / "outside.j2").symlink_to("/etc/hostname")
        _write(folder / "countdown.txt.j2", "{% include 'outside.j2' %} #POTUSpardon")
        what.append("a template includes a link out of the folder")
    args = _arguments(rng, str(folder), ids, campaign_mutation)
    return Case(args, folder, "; ".join(what) or "arguments only")


def _dump(data: dict[str, Any]) -> str:
    try:
        return tomli_w.dumps(data)
    except (TypeError, ValueError, RecursionError):   # a value TOML cannot hold
        return tomli_w.dumps({**data, "vars": {"unwritable": "value"}})


def _write(path: Path, content: str) -> None:
    path.write_bytes(content.encode("utf-8", "surrogateescape"))


def _arguments(rng: random.Random, folder: str, ids: list[int], for_folder: bool) -> list[str]:
    def some(*valid: str) -> str:
        return rng.choice([*valid, *valid, rng.choice(HOSTILE_TEXT)])

    def post_id() -> str:
        return rng.choice([str(rng.choice(ids)), str(rng.choice(ids)), "0", "-3", str(2**63),
                           str(2**64 + 5), "12abc", "99999"])

    if for_folder:
        makers: list[Callable[[], list[str]]] = [
            lambda: ["validate", folder], lambda: ["plan", folder],
            lambda: ["preview", folder, "-f", some("table", "json", "html")],
            lambda: ["validate", folder, "--as-of", some("2099-01-17T09:00:00-05:00")],
        ]
        if rng.random() < 0.1:
            makers.append(lambda: ["rehearse", folder])
    else:
        makers = [
            lambda: ["preview", some(SLUG), "-f", some("json", "html"), "-o", some("p.html", "no/dir/p.html", "/tmp", ".")],
            lambda: ["approve", some(SLUG), "--by", some("Ana Ruiz", "   "), "--post", post_id(), post_id()],
            lambda: ["cancel", "--post", post_id(), "--by", some("Ben")],
            lambda: ["queue", "add", "--account", some("coalition_x", "coalition_masto"),
                     "--at", some("+1h", "T-3h", "now"), "--by", some("Ana"), some("A one-off post #POTUSpardon")],
            lambda: ["list", "--state", some("draft", "queued")],
            lambda: ["log", post_id()], lambda: ["review", post_id(), "--requeue"],
            lambda: ["count", some("4 days. 1 action.")], lambda: ["status"],
            lambda: ["accounts", "resume", some("coalition_x")], lambda: ["db", "current"],
            lambda: ["run", "--once", "--dry-run"], lambda: ["demo", "--seconds", some("99999999999999", "5")],
            lambda: [some("approve", "validate", "queue", "nosuch")],
        ]
    args = rng.choice(makers)()
    roll = rng.random()
    if roll < 0.1 and args and args[0] != "run":   # `run` without --once is the daemon: it stays
        args.pop(rng.randrange(len(args)))
    elif roll < 0.2:
        args.insert(rng.randrange(len(args) + 1), rng.choice(["--nope", "--", "-o", "--post", "\udcff"]))
    return args


# -- the state that must not change on exit 2 --------------------------------------------------


def snapshot(case_dir: Path, db: Path, outbox: Path) -> tuple[list[str], bytes | None, list[str]]:
    conn = sqlite3.connect(db)
    try:
        dump = list(conn.iterdump())
    finally:
        conn.close()
    files = sorted(str(p.relative_to(case_dir)) for p in case_dir.rglob("*")
                   if not p.name.startswith(db.name))
    return dump, outbox.read_bytes() if outbox.exists() else None, files


@pytest.fixture(scope="module")
def baseline(tmp_path_factory: pytest.TempPathFactory, worker: Worker) -> tuple[Path, list[int]]:
    """A database with the valid campaign planned and part of it approved."""
    root = tmp_path_factory.mktemp("fuzzbase")
    folder = root / "camp"
    data, templates = valid_campaign()
    folder.mkdir()
    _write(folder / "campaign.toml", _dump(data))
    for name, text in templates.items():
        _write(folder / name, text)
    db = root / "tminus.db"
    env = {"TMINUS_DATABASE_URL": f"sqlite:///{db}", "TMINUS_DRYRUN_OUTBOX": str(root / "o.jsonl")}
    for args in (["plan", str(folder)], ["preview", SLUG, "-f", "json"]):
        result = worker.run(args, root, env)
        assert result is not None and result["code"] == 0, result
    rows = json.loads(result["out"])[0]["rows"]
    ids = [r["id"] for r in rows]
    result = worker.run(["approve", SLUG, "--by", "Fuzz", "--post", *map(str, ids[:5])], root, env)
    assert result is not None and result["code"] == 0, result
    clean = root / "baseline.db"
    with sqlite3.connect(db) as src, sqlite3.connect(clean) as dst:
        src.backup(dst)
    return clean, ids


def test_fuzz_exit_0_or_2_no_traceback_bounded_nothing_written_on_2(
        worker: Worker, baseline: tuple[Path, list[int]], tmp_path: Path) -> None:
    clean, ids = baseline
    rng = random.Random(SEED)
    codes = {0: 0, 2: 0}
    started = clock.monotonic()
    for n in range(CASES):
        case = make_case(rng, tmp_path, n, ids)
        case_dir = case.folder.parent
        db, outbox = case_dir / "tminus.db", case_dir / "outbox.jsonl"
        shutil.copyfile(clean, db)
        before = snapshot(case_dir, db, outbox)
        env = {"TMINUS_DATABASE_URL": f"sqlite:///{db}", "TMINUS_DRYRUN_OUTBOX": str(outbox)}
        result = worker.run(case.args, case_dir, env)
        where = f"seed {SEED} case {n}: tminus {case.args!r} ({case.what})"
        assert result is not None, f"{where}: no answer within {CASE_TIMEOUT:g} s"
        assert result["crash"] is None, f"{where}:\n{result['crash']}"
        output = result["out"] + result["err"]
        assert "Traceback" not in output, f"{where}:\n{output}"
        assert result["code"] in (0, 2), f"{where}: exit {result['code']}\n{output}"
        codes[result["code"]] += 1
        if result["code"] == 2:
            assert result["err"].startswith("error:") or "Usage:" in output, f"{where}:\n{output}"
            assert snapshot(case_dir, db, outbox) == before, f"{where}: wrote something on exit 2"
        shutil.rmtree(case_dir)
    # the mutations reach both outcomes (a fuzz that only ever fails parsing tests little)
    assert codes[0] > CASES // 20 and codes[2] > CASES // 5, codes
    print(f"\nfuzz: {CASES} cases, seed {SEED}: {codes[0]} exit 0, {codes[2]} exit 2, "
          f"{clock.monotonic() - started:.1f} s")
