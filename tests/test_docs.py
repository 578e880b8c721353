"""The docs are tested: every CLI command is in the README, every setting is in
.env.example and the README, and every credential an adapter reads is documented."""

from __future__ import annotations

import re

import typer.main
from typer.core import TyperGroup

from scheduler.cli import app
from scheduler.publishers import adapter_class
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
    for platform in ("x", "mastodon", "bluesky"):
        cls = adapter_class(platform)
        for suffix in [*cls.CREDENTIALS, *cls.OPTIONAL]:
            assert f"_PREFIX_{suffix}`" in README, f"{platform} {suffix} not in README"
            assert re.search(rf"TMINUS_\w+_{suffix}=", ENV_EXAMPLE), f"{suffix} not in .env.example"
