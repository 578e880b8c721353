"""The timeline a person checks before approving: every post exactly as it will go out.

Rows come from the queue (a planned campaign) or straight from a campaign folder (not
yet planned). Three renderings: a rich table for the terminal, JSON for tools, and a
self-contained HTML page to show a colleague.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import jinja2
from rich.console import Console
from rich.table import Table
from rich.text import Text
from sqlalchemy.engine import Engine
from sqlmodel import col, select

from content.campaign import Campaign as CampaignSpec
from content.countdown import t_minus
from content.expand import Expansion
from scheduler.db import session
from scheduler.models import Account, Campaign, Post
from scheduler.queue import find_campaign


@dataclass
class Row:
    id: int | None
    campaign: str
    due_local: str
    due_utc: str
    t_minus: str
    account: str
    platform: str
    length: int
    limit: int
    ok: bool
    state: str
    text: str
    warnings: list[str] = field(default_factory=list)
    approved_by: str | None = None
    url: str | None = None


@dataclass
class Timeline:
    title: str
    slug: str
    deadline_local: str
    timezone: str
    hashtags: list[str]
    rows: list[Row]


def _local(at: datetime, tz: ZoneInfo) -> str:
    return at.astimezone(tz).strftime("%a %d %b %Y %H:%M %Z")


def from_queue(engine: Engine, slug: str | None) -> list[Timeline]:
    out = []
    with session(engine) as s:
        campaigns = ([find_campaign(s, slug)] if slug else
                     list(s.exec(select(Campaign).order_by(col(Campaign.deadline))).all()))
        accounts = {a.id: a for a in s.exec(select(Account)).all()}
        for c in campaigns:
            tz = ZoneInfo(c.timezone)
            posts = s.exec(select(Post).where(Post.campaign_id == c.id)
                           .order_by(col(Post.due_at), col(Post.id))).all()
            rows = [Row(id=p.id, campaign=c.slug, due_local=_local(p.due_at, tz),
                        due_utc=p.due_at.isoformat(), t_minus=t_minus(c.deadline - p.due_at),
                        account=accounts[p.account_id].name, platform=accounts[p.account_id].platform,
                        length=p.length, limit=p.length_limit, ok=p.length <= p.length_limit,
                        state=p.state, text=p.text, warnings=list(p.warnings),
                        approved_by=p.approved_by, url=p.remote_url)
                    for p in posts]
            out.append(Timeline(c.title, c.slug, _local(c.deadline, tz), c.timezone,
                                list(c.hashtags), rows))
    return out


def from_expansion(campaign: CampaignSpec, expansion: Expansion) -> Timeline:
    tz = campaign.timezone
    rows = [Row(id=None, campaign=campaign.slug, due_local=_local(p.due_at, tz),
                due_utc=p.due_at.isoformat(), t_minus=t_minus(campaign.deadline - p.due_at),
                account=p.account, platform=p.platform, length=p.length.length,
                limit=p.length.limit, ok=p.length.ok, state="not planned", text=p.text,
                warnings=list(p.warnings))
            for p in expansion.posts]
    return Timeline(campaign.title, campaign.slug, _local(campaign.deadline, tz), tz.key,
                    list(campaign.hashtags), rows)


def render_table(timelines: list[Timeline], console: Console) -> None:
    for t in timelines:
        table = Table(title=f"{t.title} — deadline {t.deadline_local}", show_lines=True,
                      expand=True)
        for name, kw in (("id", {"justify": "right"}), ("when", {}), ("T-minus", {}),
                         ("account", {}), ("length", {"justify": "right"}), ("state", {}),
                         ("text", {"ratio": 3})):
            table.add_column(name, **kw)
        for r in t.rows:
            length = Text(f"{r.length}/{r.limit}", style="green" if r.ok else "bold red")
            text = Text(r.text)
            for w in r.warnings:
                text.append(f"\n⚠ {w}", style="yellow")
            table.add_row(str(r.id or ""), r.due_local, r.t_minus, f"{r.account}\n({r.platform})",
                          length, r.state, text)
        console.print(table)
        if not t.rows:
            console.print("(no posts)")


def render_json(timelines: list[Timeline]) -> str:
    return json.dumps([asdict(t) for t in timelines], indent=2, ensure_ascii=False)


_html_env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(str(Path(__file__).parent / "templates")),
    autoescape=True, trim_blocks=True, lstrip_blocks=True)


def render_html(timelines: list[Timeline], generated: datetime) -> str:
    page = _html_env.get_template("preview.html.j2")
    context: dict[str, Any] = {"timelines": timelines, "generated": generated.strftime("%Y-%m-%d %H:%M UTC")}
    return page.render(context)
