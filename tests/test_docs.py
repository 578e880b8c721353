"""The docs are tested: every CLI command is in the README, every setting is in
.env.example and the README, and every credential an adapter reads is documented."""

from __future__ import annotations

import re

import typer.main
from typer.core import TyperGroup

from content.platforms import PLATFORMS
from scheduler.cli import app
from scheduler.settings import SETTINGS_VARS
from tests.conftest import ROOT

README = (ROOT / "README.md").read_text(encoding="utf-8")
ENV_EXAMPLE = (ROOT / ".env.example").read_text(encoding="utf-8")


def _commands(group: TyperGroup, prefix: str = "tminus") -> list[str]:
    out = []
    for name, cmd in group.commands.items():
        if isinstance(cmd, TyperGroup):
            out.extend(_commands(cmd, f"{prefix} {name}"))
        else:
            out.append(f"{prefix} {name}")
    return out


def test_every_command_is_in_the_readme() -> None:
    commands = _commands(typer.main.get_command(app))  # type: ignore[arg-type]
    assert len(commands) >= 18
    missing = [c for c in commands if f"`{c}" not in README]
    assert missing == []


def test_every_setting_is_documented() -> None:
    for var in SETTINGS_VARS:
        assert re.search(rf"^#?\s*{var}=", ENV_EXAMPLE, re.M), f"{var} not in .env.example"
        assert f"`{var}`" in README, f"{var} not in README"


def test_every_credential_is_documented() -> None:
    """Every variable of every platform in the registry, required or optional, in the
    README's credentials table and in .env.example."""
    checked = 0
    for entry in PLATFORMS.values():
        for var in entry.credentials.variables():
            assert f"`{var.variable('PREFIX')}`" in README, f"{entry.name} {var.suffix} not in README"
            assert re.search(rf"^#?\s*TMINUS_\w+_{var.suffix}=", ENV_EXAMPLE, re.M), \
                f"{entry.name} {var.suffix} not in .env.example"
            checked += 1
    assert checked >= 10


def test_every_platform_and_tier_is_in_the_readme() -> None:
    for entry in PLATFORMS.values():
        assert f"`{entry.name}`" in README, f"platform {entry.name} not in README"
        for tier in entry.tiers:
            assert f"`{tier.name}`" in README, f"{entry.name} tier {tier.name} not in README"
