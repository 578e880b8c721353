"""docs/DESIGN.md is the design: its table of states and transitions is the code's."""

from __future__ import annotations

import re

from scheduler.models import PostState
from scheduler.transitions import ALLOWED
from tests.conftest import ROOT

DESIGN = (ROOT / "docs" / "DESIGN.md").read_text(encoding="utf-8")


def _design_transitions() -> dict[str, set[str]]:
    section = DESIGN.split("| from | to |", 1)[1].split("\n\n", 1)[0]
    table: dict[str, set[str]] = {}
    for line in section.splitlines():
        m = re.fullmatch(r"\| (\w+) \|([^|]*)\|", line.strip())
        if m:
            table[m.group(1)] = {t.strip() for t in m.group(2).split(",") if t.strip()}
    return table


def test_every_state_and_transition_in_the_design_is_the_codes() -> None:
    code = {str(state): {str(t) for t in targets} for state, targets in ALLOWED.items()}
    assert _design_transitions() == code
    assert set(code) == {s.value for s in PostState}


def test_the_readme_points_to_the_design_and_not_outside_the_repository() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "docs/DESIGN.md" in readme
    assert "../shared" not in readme and "../shared" not in DESIGN
