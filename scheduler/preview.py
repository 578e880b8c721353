"""The timeline a person checks before approving: every post exactly as it will go out.

Rows come from the queue (a planned campaign) or straight from a campaign folder (not
yet planned). Each row has everything that is sent — the text, the content warning,
visibility, language, each image with its alt text, the post it replies to (replies
follow their parent, indented) — and its length as the platform counts what is sent.
A planned campaign's timeline carries the digest of its drafts
(`scheduler.approval.digest_of`): `tminus approve SLUG --expect DIGEST` approves them
only if nothing changed since. Three renderings: a rich table for the terminal, JSON
for tools, and a self-contained HTML page (images embedded as data: URIs) to show a
colleague.
"""

from __future__ import annotations

import base64
import json
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import jinja2
from rich.console import Console
from rich.markup import escape
from rich.padding import Padding
from rich.rule import Rule
from rich.table import Table
from rich.text import Text
from sqlalchemy.engine import Engine
from sqlmodel import col, select

from content.campaign import Campaign as CampaignSpec
from content.chars import visible
from content.countdown import t_minus
from content.expand import Expansion
from content.media import sniff_file
from content.rules import check_length
from scheduler.approval import digest_of
from scheduler.db import session
from scheduler.localtime import when
from scheduler.models import Account, Campaign, Post, PostState
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
    content_warning: str | None = None
    visibility: str | None = None
    language: str | None = None
    media: list[dict[str, str]] = field(default_factory=list)   # file, path, alt, type
    key: str = ""                      # the post's identity within this timeline
    reply_to: str | None = None        # the key of the post it replies to
    depth: int = 0                     # 0, or how deep in its thread a reply is


@dataclass
class Timeline:
    title: str
    slug: str
    deadline_local: str
    timezone: str
    hashtags: list[str]
    rows: list[Row]
    planned: bool = True
    digest: str | None = None          # of the drafts shown: `approve --expect` takes it
    drafts: int = 0
    in_queue: bool = False             # a folder's preview whose slug is planned already


def _options(opts: dict[str, Any] | None) -> dict[str, Any]:
    opts = opts or {}
    return {"content_warning": opts.get("content_warning") or None,
            "visibility": opts.get("visibility"), "language": opts.get("language"),
            "media": [{"file": Path(str(m.get("path", ""))).name, "path": str(m.get("path", "")),
                       "alt": str(m.get("alt", "")), "type": sniff_file(str(m.get("path", "")))
                       or "not a PNG, JPEG, GIF or WebP image (or missing)"}
                      for m in opts.get("media") or []]}


def _threaded(rows: list[Row]) -> list[Row]:
    """Rows in due order, each reply right after the post it answers (and indented)."""
    by_key = {r.key: r for r in rows}
    children: dict[str, list[Row]] = {}
    for r in rows:
        if r.reply_to in by_key:
            children.setdefault(str(r.reply_to), []).append(r)
    out: list[Row] = []

    def walk(r: Row, depth: int) -> None:
        r.depth = depth
        out.append(r)
        for c in children.get(r.key, []):
            walk(c, depth + 1)
    for r in rows:
        if r.reply_to not in by_key:
            walk(r, 0)
    return out


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
            rows = []
            for p in posts:
                acc = accounts[p.account_id]
                opts = _options(p.options)
                # the platform's own counting of what is sent (a content warning counts
                # where the platform counts it: Mastodon)
                fit = check_length(acc.platform, p.text, limit=acc.max_characters,
                                   spoiler_text=opts["content_warning"] or "")
                rows.append(Row(
                    id=p.id, campaign=c.slug, due_local=when(p.due_at, tz),
                    due_utc=p.due_at.isoformat(), t_minus=t_minus(c.deadline - p.due_at),
                    account=acc.name, platform=acc.platform, length=fit.length, limit=fit.limit,
                    ok=fit.ok, state=p.state, text=p.text, warnings=list(p.warnings),
                    approved_by=p.approved_by, url=p.remote_url, **opts, key=f"#{p.id}",
                    reply_to=None if p.parent_id is None else f"#{p.parent_id}"))
            drafts = [p.id for p in posts if p.state == PostState.DRAFT and p.id is not None]
            out.append(Timeline(c.title, c.slug, when(c.deadline, tz), c.timezone,
                                list(c.hashtags), _threaded(rows), True,
                                digest_of(s, drafts), len(drafts)))
    return out


def from_expansion(campaign: CampaignSpec, expansion: Expansion, *, in_queue: bool = False
                   ) -> Timeline:
    tz = campaign.timezone
    rows = [Row(id=None, campaign=campaign.slug, due_local=when(p.due_at, tz),
                due_utc=p.due_at.isoformat(), t_minus=t_minus(campaign.deadline - p.due_at),
                account=p.account, platform=p.platform, length=p.length.length,
                limit=p.length.limit, ok=p.length.ok, state="not planned", text=p.text,
                warnings=list(p.warnings), **_options(p.options()), key=p.plan_key,
                reply_to=p.reply_to_key)
            for p in expansion.posts]
    return Timeline(campaign.title, campaign.slug, when(campaign.deadline, tz), tz.key,
                    list(campaign.hashtags), _threaded(rows), planned=False, in_queue=in_queue)


def _shown(r: Row) -> Text:
    """Everything of a row that is sent, as terminal text (escaped: see `visible`)."""
    text = Text()
    if r.reply_to:
        text.append(f"↳ reply to {r.reply_to}\n", style="cyan")
    if r.content_warning:
        text.append(f"CW: {visible(r.content_warning)}\n", style="magenta")
    text.append(visible(r.text))
    for m in r.media:
        text.append(f"\n🖼 {visible(m['file'])} ({m['type']}) alt: {visible(m['alt'])}", style="blue")
    sent = [f"{k}: {v}" for k, v in (("visibility", r.visibility), ("language", r.language)) if v]
    if sent:
        text.append("\n" + " · ".join(sent), style="dim")
    for w in r.warnings:
        text.append(f"\n⚠ {w}", style="yellow")
    return text


# Narrower than this, the table's text column would be a few words wide: each post is a
# block instead (a line of its facts, then everything that is sent, at full width).
TABLE_MIN_WIDTH = 110


def render_table(timelines: list[Timeline], console: Console) -> None:
    """The timelines for the terminal: a table when it is wide enough, else blocks."""
    if console.width < TABLE_MIN_WIDTH:
        render_blocks(timelines, console)
        return
    for t in timelines:
        # the title is the user's text, not rich markup ("Vote [yes] on Prop 5", "[/]")
        table = Table(title=f"{escape(visible(t.title))} — deadline {t.deadline_local}",
                      show_lines=True, expand=True)
        for name, kw in (("id", {"justify": "right"}), ("when", {}), ("T-minus", {}),
                         ("account", {}), ("length", {"justify": "right"}), ("state", {}),
                         ("text", {"ratio": 3})):
            table.add_column(name, **kw)
        for r in t.rows:
            length = Text(f"{r.length}/{r.limit}", style="green" if r.ok else "bold red")
            table.add_row(("  " * r.depth) + str(r.id or ""), r.due_local, r.t_minus,
                          Text(f"{visible(r.account)}\n({r.platform})"), length, r.state,
                          _shown(r))
        console.print(table)
        if not t.rows:
            console.print("(no posts)")
        print_footer(t, console)


def render_blocks(timelines: list[Timeline], console: Console) -> None:
    """Each post as a line of its facts (id, time, T-minus, account, length, state) and
    then what is sent, indented and wrapped at words: a narrow terminal reads every word."""
    for t in timelines:
        console.print(Text(f"{visible(t.title)} — deadline {t.deadline_local}", style="bold"),
                      soft_wrap=False)
        for r in t.rows:
            facts = Text(("  " * r.depth) + (f"#{r.id} " if r.id else ""), style="bold")
            facts.append(f"{r.due_local} · {r.t_minus} · {visible(r.account)} ({r.platform}) · ")
            facts.append(f"{r.length}/{r.limit}", style="green" if r.ok else "bold red")
            facts.append(f" · {r.state}")
            console.print(Rule(style="dim"))
            console.print(facts, soft_wrap=False)
            console.print(Padding(_shown(r), (0, 0, 0, 4 + 2 * r.depth), expand=False),
                          soft_wrap=False)
        console.print(Rule(style="dim"))
        if not t.rows:
            console.print("(no posts)")
        print_footer(t, console)


def print_footer(t: Timeline, console: Console) -> None:
    """The footer, wrapped to the terminal but for the approve command: that one is one
    line however narrow the terminal, so that copying it copies the command whole (a
    line break inside it would run `--expect` without its digest)."""
    *said, command = footer(t).split("\n")
    if said and command.lstrip().startswith("tminus approve"):
        console.print(Text("\n".join(said)), soft_wrap=False)
        console.print(Text(command), soft_wrap=True)
    else:
        console.print(Text(footer(t)), soft_wrap=False)


def footer(t: Timeline) -> str:
    """What is true of the posts shown: published or not, and how to approve exactly them."""
    if not t.planned and t.in_queue:
        # the folder as it is now, which may differ from what was planned and approved
        return (f"This is the folder as it is now, not the queue. {t.slug} is planned: "
                f"`tminus preview {t.slug}` shows its posts' states and the digest to approve "
                "(after `tminus plan` if the folder changed).")
    if not t.planned:
        return "Not planned: nothing shown here is queued or published."
    published = sum(1 for r in t.rows if r.state == PostState.PUBLISHED)
    said = (f"{published} of these {len(t.rows)} posts have been published."
            if published else "None of these posts has been published.")
    if t.drafts:
        said += (f" Digest of the {t.drafts} draft(s) shown: {t.digest}\nTo approve exactly "
                 f"these:\n  tminus approve {t.slug} --by YOUR-NAME --expect {t.digest}")
    return said


def render_json(timelines: list[Timeline]) -> str:
    return json.dumps([asdict(t) for t in timelines], indent=2, ensure_ascii=False)


_html_env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(str(Path(__file__).parent / "templates")),
    autoescape=True, trim_blocks=True, lstrip_blocks=True)


# An image larger than this is named, not embedded (a page to mail to a colleague)
EMBED_MAX_BYTES = 8 * 1024 * 1024


def _data_uri(m: dict[str, str]) -> str | None:
    """A thumbnail's source: the image itself as a data: URI (the page fetches nothing)."""
    mime = sniff_file(m["path"])
    try:
        if mime is None or Path(m["path"]).stat().st_size > EMBED_MAX_BYTES:
            return None
        return f"data:{mime};base64," + base64.b64encode(Path(m["path"]).read_bytes()).decode()
    except OSError:
        return None


def render_html(timelines: list[Timeline], generated: datetime) -> str:
    page = _html_env.get_template("preview.html.j2")
    context: dict[str, Any] = {"timelines": timelines, "footer": footer, "data_uri": _data_uri,
                               "generated": generated.strftime("%Y-%m-%d %H:%M UTC")}
    return page.render(context)
