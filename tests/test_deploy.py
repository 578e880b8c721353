"""deploy/: the systemd units say what the README says (ExecStart `tminus run`,
Restart=on-failure, the environment file, a hardening set), systemd itself accepts
them (`systemd-analyze verify`), and the example environment file is valid settings."""

from __future__ import annotations

import configparser
import subprocess
import sys
from pathlib import Path

from scheduler.settings import SETTINGS_VARS, Settings
from tests.conftest import ROOT

DEPLOY = ROOT / "deploy"
SERVICES = ("tminus.service", "tminus-web.service", "tminus-notify.service",
            "tminus-engagement.service")
TIMERS = ("tminus-notify.timer", "tminus-engagement.timer")
HARDENING = ("NoNewPrivileges", "ProtectSystem", "ProtectHome", "PrivateTmp", "PrivateDevices",
             "CapabilityBoundingSet", "RestrictAddressFamilies", "SystemCallFilter", "UMask")


def _unit(name: str) -> configparser.ConfigParser:
    unit = configparser.ConfigParser(interpolation=None, strict=True)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read_string((DEPLOY / name).read_text(encoding="utf-8"))
    return unit


def test_the_units_run_tminus_with_the_environment_file_and_hardening() -> None:
    commands = {}
    for name in SERVICES:
        service = _unit(name)["Service"]
        assert service["EnvironmentFile"] == "/etc/tminus/tminus.env", name
        assert service["User"] == "tminus" and service["StateDirectory"] == "tminus", name
        assert [k for k in HARDENING if k not in service] == [], name
        commands[name] = service["ExecStart"].split("/")[-1]
    assert commands == {"tminus.service": "tminus run",
                        "tminus-web.service": "tminus web --host 127.0.0.1 --port 8000",
                        "tminus-notify.service": "tminus notify check",
                        "tminus-engagement.service": "tminus engagement fetch"}
    daemon = _unit("tminus.service")
    assert daemon["Service"]["Restart"] == "on-failure"
    assert daemon["Service"]["RestartPreventExitStatus"] == "2"     # a bad setting: no loop
    # SIGTERM lets the attempt in flight finish: longer than two request timeouts
    assert int(daemon["Service"]["TimeoutStopSec"]) > 2 * 10
    assert _unit("tminus-notify.timer")["Timer"]["OnUnitActiveSec"] == "1min"
    assert _unit("tminus-engagement.timer")["Timer"]["OnUnitActiveSec"] == "1h"


def test_systemd_accepts_the_units(tmp_path: Path) -> None:
    """Verified by systemd's own parser, with ExecStart pointed at this checkout's
    tminus (systemd-analyze checks the program exists)."""
    tminus = Path(sys.executable).parent / "tminus"
    assert tminus.exists()
    for name in [*SERVICES, *TIMERS]:
        text = (DEPLOY / name).read_text(encoding="utf-8")
        (tmp_path / name).write_text(text.replace("/opt/tminus/.venv/bin/tminus", str(tminus)),
                                     encoding="utf-8")
    r = subprocess.run(["systemd-analyze", "verify", "--man=no",
                        *[str(tmp_path / n) for n in [*SERVICES, *TIMERS]]],
                       capture_output=True, text=True, timeout=60)
    said = [line for line in (r.stdout + r.stderr).splitlines() if line.strip()]
    assert (r.returncode, said) == (0, [])


def test_the_example_environment_file_is_valid_settings() -> None:
    env = {}
    for line in (DEPLOY / "tminus.env.example").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            env[key] = value
    assert [k for k in env if k not in SETTINGS_VARS] == []
    s = Settings.from_env(env)
    assert s.log_format == "json" and s.database_url.startswith("sqlite:////var/lib/tminus/")
