"""The campaign report rendered: JSON (for a spreadsheet or a script) and a
self-contained HTML page (to send round). The table is the CLI's (rich)."""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import jinja2

from content.countdown import duration
from scheduler.service.report import CampaignReport

_env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(Path(__file__).parent / "templates")),
                          autoescape=True, trim_blocks=True, lstrip_blocks=True)


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def render_json(r: CampaignReport) -> str:
    data = _plain(dataclasses.asdict(r))
    return json.dumps(data, indent=2, ensure_ascii=False)


def late_words(seconds: float | None) -> str:
    """"on time", "3 min late": how a person says it."""
    if seconds is None:
        return ""
    if seconds < 60:
        return "on time"
    return f"{duration(timedelta(seconds=seconds))} late"


def render_html(r: CampaignReport) -> str:
    page = _env.get_template("report.html.j2")
    tz = ZoneInfo(r.timezone)

    def local(at: datetime, fmt: str) -> str:
        """A time as the campaign's people read it: in its timezone, abbreviated."""
        return at.astimezone(tz).strftime(fmt)
    return page.render(r=r, late=late_words, local=local,
                       generated=local(r.now, "%Y-%m-%d %H:%M %Z"))
