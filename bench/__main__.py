"""`python -m bench`: run the benchmarks, print the table, write the JSON file.

    python -m bench                 every benchmark at full size (minutes)
    python -m bench --quick         small sizes (seconds): what the test suite runs
    python -m bench --only burst    one benchmark (repeat --only for several)
    python -m bench --json PATH     where the results go (default bench/results/latest.json)
    python -m bench --quick --jobs 3  benchmarks side by side, each in its own process: faster,
                                    but they disturb each other's figures (the test suite's way)
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.common import BASELINE_NAMES, FULL, QUICK, ROOT, Baseline, Figure, fmt, machine_info

BENCHMARKS = ("plan", "start", "accuracy", "burst", "postgres", "latency", "rehearse")
DEFAULT_JSON = ROOT / "bench" / "results" / "latest.json"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="small sizes: seconds, not minutes")
    p.add_argument("--only", action="append", choices=BENCHMARKS, metavar="NAME",
                   help=f"run only this benchmark ({', '.join(BENCHMARKS)}); repeatable")
    p.add_argument("--json", type=Path, default=DEFAULT_JSON, help="results file")
    p.add_argument("--tmp", type=Path, default=Path(tempfile.gettempdir()),
                   help="where the throw-away databases go")
    p.add_argument("--jobs", type=int, default=1,
                   help="run this many benchmarks at once, each in its own process (the "
                        "figures then disturb each other: to check the harness, not to measure)")
    args = p.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    names = [n for n in BENCHMARKS if not args.only or n in args.only]

    started = datetime.now(UTC)
    machine = machine_info()        # before: its load average says how busy the machine was
    t0 = time.perf_counter()
    if args.jobs > 1:
        figures, runs = _run_apart(names, args)
    else:
        figures, runs = _run_here(names, sizes, args.tmp)

    result = {
        "sizes": sizes.name, "size_detail": sizes.__dict__, "jobs": args.jobs, "machine": machine,
        "load_average_at_end": os.getloadavg(), "started_at": started.isoformat(),
        "seconds": time.perf_counter() - t0, "benchmarks": runs,
        "figures": [f.as_dict() for f in figures],
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(_finite(result), indent=2, default=str) + "\n", encoding="utf-8")
    print(table(figures, result))
    print(f"\nresults: {args.json}")
    failed = [n for n, r in runs.items() if r["error"]]
    if failed:
        print(f"benchmarks that failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


def _run_here(names: list[str], sizes: Any, tmp: Path) -> tuple[list[Figure], dict[str, Any]]:
    figures: list[Figure] = []
    runs: dict[str, dict[str, Any]] = {}
    for name in names:
        print(f"… {name}", file=sys.stderr, flush=True)
        b0 = time.perf_counter()
        try:
            module = importlib.import_module(f"bench.{name}")
            figures.extend(module.run(sizes, tmp))
            runs[name] = {"seconds": time.perf_counter() - b0, "error": None}
        except Exception as e:  # one broken benchmark must not hide the others' figures
            traceback.print_exc()
            runs[name] = {"seconds": time.perf_counter() - b0, "error": f"{type(e).__name__}: {e}"}
        print(f"  {name}: {runs[name]['seconds']:.1f} s", file=sys.stderr, flush=True)
    return figures, runs


def _run_apart(names: list[str], args: argparse.Namespace) -> tuple[list[Figure], dict[str, Any]]:
    """Each benchmark as `python -m bench --only NAME` in its own process, `args.jobs` at
    a time; their JSON files are merged in the usual order."""
    from concurrent.futures import ThreadPoolExecutor
    out = Path(tempfile.mkdtemp(prefix="tminus-bench-jobs-", dir=args.tmp))

    def one(name: str) -> tuple[list[Figure], dict[str, Any]]:
        path = out / f"{name}.json"
        cmd = [sys.executable, "-m", "bench", "--only", name, "--json", str(path),
               "--tmp", str(args.tmp)] + (["--quick"] if args.quick else [])
        done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
        sys.stderr.write(done.stderr)
        if not path.exists():
            return [], {name: {"seconds": None, "error": f"exit {done.returncode}, no results"}}
        data = json.loads(path.read_text(encoding="utf-8"))
        return [_figure(f) for f in data["figures"]], data["benchmarks"]

    figures: list[Figure] = []
    runs: dict[str, Any] = {}
    with ThreadPoolExecutor(args.jobs) as pool:
        for got, ran in pool.map(one, names):
            figures.extend(got)
            runs.update(ran)
    shutil.rmtree(out, ignore_errors=True)
    return figures, runs


def _figure(d: dict[str, Any]) -> Figure:
    return Figure(**{**d, "baselines": {k: Baseline(**b) for k, b in d["baselines"].items()}})


def table(figures: list[Figure], result: dict[str, Any]) -> str:
    m = result["machine"]
    head = ["what", "tminus", *BASELINE_NAMES.values(), "target", "met"]
    rows = []
    for f in figures:
        base = [fmt(f.baselines[k].value, f.baselines[k].unit) if k in f.baselines else "—"
                for k in BASELINE_NAMES]
        met = {True: "yes", False: "NO", None: ""}[f.met]
        rows.append([f.what, fmt(f.value, f.unit), *base, f.target, met])
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]

    def line(r: list[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)) + " |"

    out = [f"tminus benchmarks ({result['sizes']} sizes) on {m['cores']} cores, {m['cpu']}, "
           f"Python {m['python']}, SQLite {m['sqlite']}, APScheduler {m['apscheduler']}; "
           f"{result['seconds']:.0f} s", "",
           line(head), "|" + "|".join("-" * (w + 2) for w in widths) + "|",
           *[line(r) for r in rows], ""]
    for f in figures:
        notes = [f.note] if f.note else []
        notes += [f"{BASELINE_NAMES[k]}: {b.note}" for k, b in f.baselines.items() if b.note]
        if notes:
            out.append(f"- {f.key}: " + "; ".join(notes))
    return "\n".join(out)


def _finite(value: Any) -> Any:
    """NaN and infinities become null: the file stays strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


if __name__ == "__main__":
    sys.exit(main())
