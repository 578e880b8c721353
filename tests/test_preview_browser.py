"""The HTML preview in a real browser: headless Chromium loads the page a comms
person would send a colleague, and every post is on it, readable."""

from __future__ import annotations

import shutil
import struct
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import ROOT, CliResult

pytestmark = pytest.mark.slow

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
         "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--hide-scrollbars"]


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.fail("Chromium not found: `apt-get install chromium` (.ci/run does)")
    return found


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_the_html_preview_renders_every_post_in_chromium(
        cli: Callable[..., CliResult], tmp_path: Path) -> None:
    page = tmp_path / "preview.html"
    r = cli("preview", str(ROOT / "examples" / "potuspardon"), "--format", "html",
            "--output", str(page), "--as-of", "2017-01-15T00:00:00-05:00")
    assert r.code == 0, r.err
    browser = _chromium()
    profile = tmp_path / "profile"
    dom = subprocess.run([browser, *FLAGS, f"--user-data-dir={profile}", "--dump-dom",
                          page.as_uri()], capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    html = dom.stdout
    assert html.count("<article") == 46
    assert "Categorical pardon for long-time residents" in html
    assert "202-456-1111" in html and "#HereToStay" in html
    assert "T-4d3h" in html                                   # the first countdown's T-minus

    shot = tmp_path / "preview.png"
    done = subprocess.run([browser, *FLAGS, f"--user-data-dir={profile}",
                           f"--screenshot={shot}", "--window-size=1100,1600", page.as_uri()],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert _png_size(shot) == (1100, 1600)
    assert shot.stat().st_size > 20_000                       # a page, not a blank
