"""rehearse: the example campaign (examples/potuspardon) played on a virtual clock.

Two figures: `scheduler.service.rehearse()` called in a process that has already
imported tminus (the median of a few calls; the first call is reported apart: it
imports the database code), and the
`tminus rehearse examples/potuspardon` command end to end (a fresh process: imports,
planning, every tick, the printed table). Beside the command's wall-clock time, its
CPU time (user and system, of the process and of the child it forks to import the
database code and play the campaign, service/rehearsal.py): on a shared machine the
one moves with the load, the other much less. No
baseline: neither APScheduler nor a polling daemon can replay a campaign on a virtual
clock.
"""

from __future__ import annotations

import resource
import subprocess
import time
from pathlib import Path

from bench.common import ROOT, TMINUS, Figure, Sizes, Stopwatch, child_env, median

TARGET_SECONDS = 1.0   # issue 12: the example campaign rehearsed in under a second
EXAMPLE = ROOT / "examples" / "potuspardon"


def run(sizes: Sizes, tmp: Path) -> list[Figure]:
    with Stopwatch() as imported:
        from scheduler.service import rehearse
    calls = []
    sent = 0
    for _ in range(sizes.rehearse_repeats + 1):
        with Stopwatch() as sw:
            report = rehearse(EXAMPLE)
        calls.append(sw.seconds)
        sent = len(report.sent)
    first, warm = calls[0], median(calls[1:])

    commands, cpus = [], []
    for _ in range(sizes.rehearse_repeats):
        before = _children_cpu()
        t0 = time.perf_counter()
        done = subprocess.run([TMINUS, "rehearse", str(EXAMPLE)], cwd=tmp,
                              env=child_env() | {"COLUMNS": "200"}, capture_output=True,
                              text=True, timeout=300)
        commands.append(time.perf_counter() - t0)
        cpus.append(_children_cpu() - before)
        if done.returncode != 0:
            raise RuntimeError(f"tminus rehearse failed: {done.stderr[-2000:]}")
    command = median(commands)

    raw = {"import_s": imported.seconds, "calls_s": calls, "commands_s": commands,
           "commands_cpu_s": cpus, "posts_sent": sent, "ticks": report.ticks}
    return [
        Figure("rehearse.call", f"rehearse examples/potuspardon: rehearse() ({sent} posts)",
               warm, "s", target=f"< {TARGET_SECONDS:g} s", met=warm < TARGET_SECONDS,
               note=f"first call {first:.2f} s (imports the database code); median of {len(calls) - 1}",
               raw=raw),
        Figure("rehearse.command", "`tminus rehearse examples/potuspardon`, end to end",
               command, "s", target=f"< {TARGET_SECONDS:g} s", met=command < TARGET_SECONDS,
               note=f"median of {len(commands)}, fresh process each; CPU (user+sys, with its "
                    f"forked child) {median(cpus):.2f} s", raw=raw),
    ]


def _children_cpu() -> float:
    """User and system CPU seconds of the waited-for children so far (a child's own
    waited-for children included: the rehearsal's fork)."""
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime
