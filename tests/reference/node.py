"""Run the reference implementations (npm packages, by Node) over many texts at once.

The packages are pinned by ``package-lock.json`` beside this file and installed by
``scripts/test-prereqs`` (the first step of ``make test``) into ``.cache/node/``, which
git ignores.  One Node process answers a whole corpus: texts go in as JSON lines.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
CACHE = ROOT / ".cache" / "node"
LOCK = HERE / "package-lock.json"
RUNNER = HERE / "runner.cjs"


class ReferenceMissing(Exception):
    """Node or the reference packages are not there: the message says what to run."""


@dataclass(frozen=True)
class Reference:
    x_length: int  # twitter-text parseTweet().weightedLength
    x_valid: bool  # ... .valid
    bluesky_length: int  # @atproto/api RichText.graphemeLength


def _node() -> str:
    node = shutil.which("node")
    if node is None:
        raise ReferenceMissing(
            "node is not installed: run scripts/test-prereqs (make test does), which "
            "installs Debian's nodejs and npm and the reference npm packages"
        )
    stamp = CACHE / ".installed"
    want = hashlib.sha256(LOCK.read_bytes()).hexdigest()
    if not stamp.is_file() or stamp.read_text().strip() != want:
        raise ReferenceMissing(
            f"the npm packages of {LOCK.relative_to(ROOT)} are not installed in "
            f"{CACHE.relative_to(ROOT)}/ (or are older than the lock file): run scripts/test-prereqs"
        )
    return node


def _run(mode: str, stdin: str) -> str:
    result = subprocess.run(
        [_node(), str(RUNNER), str(CACHE / "node_modules"), mode],
        input=stdin, capture_output=True, text=True, encoding="utf-8", timeout=600, check=False,
    )
    if result.returncode != 0:
        raise ReferenceMissing(f"the reference runner failed: {result.stderr.strip()[-2000:]}")
    return result.stdout


def reference_lengths(texts: list[str]) -> list[Reference]:
    """The reference's answers for ``texts``, in order (one Node process for all)."""
    # ensure_ascii: lone surrogates and U+2028 travel as \\u escapes, exactly.
    out = _run("count", "".join(json.dumps(text) + "\n" for text in texts)).splitlines()
    if len(out) != len(texts):
        raise ReferenceMissing(f"the reference runner answered {len(out)} of {len(texts)} texts")
    answers = []
    for line in out:
        row = json.loads(line)
        answers.append(Reference(row["x"][0], row["x"][1], row["bluesky"]))
    return answers


def reference_data() -> dict[str, Any]:
    """twitter-text's TLD lists and twemoji-parser's emoji regex, as installed."""
    data: dict[str, Any] = json.loads(_run("data", ""))
    return data
