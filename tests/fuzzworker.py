"""The fuzz test's worker: runs `tminus` commands in-process, one after another.

Reads one JSON case per line on stdin (`{"args", "cwd", "env"}`), runs the CLI's
`main()` with those arguments in that folder and environment, and writes one JSON line:
`{"code", "out", "err", "crash"}`, where `crash` is the traceback of anything other
than a clean exit. The test kills this process if a case takes too long, so a hang
fails the case that caused it instead of the suite. (Starting a process per case would
cost a second each in imports.)
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
import traceback


def main() -> None:
    from scheduler.cli import main as tminus
    base_env = dict(os.environ)
    for line in sys.stdin:
        case = json.loads(line)
        os.environ.clear()
        os.environ.update({**base_env, **case["env"]})
        os.chdir(case["cwd"])
        sys.argv = ["tminus", *case["args"]]
        out, err = io.StringIO(), io.StringIO()
        code: int | None = None
        crash = None
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                tminus()
            except SystemExit as e:
                code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
            except BaseException:
                crash = traceback.format_exc()
        sys.__stdout__.write(json.dumps({"code": code, "out": out.getvalue(), "err": err.getvalue(),
                                         "crash": crash}) + "\n")
        sys.__stdout__.flush()


if __name__ == "__main__":
    main()
