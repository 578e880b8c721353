"""Writing the supporters' toolkit as a static site.

    SITE/index.html        the first language's page
    SITE/es/index.html     each other language (one click away from every page)
    SITE/toolkit.css, toolkit.js   the project's own style and script
    SITE/index.json        every suggested text per platform and language, for partners

The site is written whole into a temporary folder beside SITE and renamed into place
only once every page is rendered, so a mistake leaves nothing half-written and an
existing site as it was. A folder tminus did not write is never replaced.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup

from content.campaign import load_campaign
from content.errors import CampaignError, TminusError
from content.toolkit import letter as letters
from content.toolkit.texts import Kit, Page, RowStep, Step, build_kit, step_at
from content.toolkit.words import PLATFORM_NAMES, WORDS, local_date

HERE = Path(__file__).parent
MARKER = ".tminus-toolkit"              # says "tminus wrote this folder": safe to replace
ASSETS = ("toolkit.css", "toolkit.js")

_env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(HERE / "templates")),
                          autoescape=True, trim_blocks=True, lstrip_blocks=True,
                          undefined=jinja2.StrictUndefined)
_env.filters["platform_name"] = lambda p: PLATFORM_NAMES[p]


@dataclass
class SiteReport:
    output: Path
    slug: str
    closed: bool
    languages: tuple[str, ...]
    posts: int = 0                      # suggested posts
    texts: int = 0                      # (post, language, platform, step) texts in all

    calls: int = 0
    letter: bool = False
    files: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def build_site(folder: Path, output: Path, *, as_of: datetime) -> SiteReport:
    """Check the campaign's `[toolkit]`, render every page as of `as_of`, and write
    the site to `output`. Raises a TminusError (nothing written) on any problem."""
    _check_output(output)
    campaign = load_campaign(folder)
    if campaign.toolkit is None:
        raise CampaignError("no [toolkit] section; add one with the posts, call lines or "
                            "letter supporters get (see the README, \"Supporters' toolkit\")",
                            file=str(campaign.file), key="toolkit")
    kit = build_kit(campaign, campaign.toolkit, as_of=as_of)
    files = render_site(kit)
    _write(output, files)
    report = SiteReport(output=output, slug=kit.slug, closed=kit.closed,
                        languages=kit.toolkit.languages, files=sorted(files),
                        warnings=list(kit.warnings))
    if not kit.closed:
        report.posts, report.calls = len(kit.toolkit.posts), len(kit.toolkit.calls)
        report.letter = kit.toolkit.letter is not None
    report.texts = sum(len(r.steps) * len(r.platforms) for page in kit.pages.values()
                       for p in page.posts for r in p.rows)
    return report


def page_path(kit: Kit, lang: str) -> str:
    return "index.html" if lang == kit.toolkit.languages[0] else f"{lang}/index.html"


def render_site(kit: Kit) -> dict[str, bytes]:
    """Every file of the site: relative path -> content."""
    files = {name: (HERE / "static" / name).read_bytes() for name in ASSETS}
    for lang in kit.toolkit.languages:
        files[page_path(kit, lang)] = render_page(kit, lang).encode("utf-8")
    files["index.json"] = (json.dumps(index_data(kit), ensure_ascii=False, indent=1)
                           + "\n").encode("utf-8")
    files[MARKER] = b"written by `tminus toolkit`; the folder is replaced when it is built again\n"
    return files


def render_page(kit: Kit, lang: str) -> str:
    page = kit.pages[lang]
    words = WORDS[lang]
    root = "" if lang == kit.toolkit.languages[0] else "../"
    top = kit.seconds_left
    left = max(top, 0)
    parts = [("d", left // 86400), ("h", left % 86400 // 3600), ("m", left % 3600 // 60),
             ("s", left % 60)]
    unit_words = {"d": (words["days"], words["day"]), "h": (words["hours"], words["hour"]),
                  "m": (words["minutes"], words["minute"]),
                  "s": (words["seconds"], words["second"])}
    countdown = [(u, str(n) if u == "d" else f"{n:02d}", unit_words[u][n == 1]) for u, n in parts]
    letter_preview = None
    if page.letter is not None:
        empty = dict.fromkeys((name for name, _ in page.letter.blanks), "______")
        letter_preview = {"subject": letters.fill(page.letter.subject, empty),
                          "body": letters.fill(page.letter.body, empty)}
    context: dict[str, Any] = {
        "page": page, "words": words, "root": root, "closed": kit.closed,
        "hashtags": kit.toolkit.hashtags, "platforms": kit.toolkit.platforms,
        "countdown": countdown,
        "languages": [(other, WORDS[other]["language_name"], root + page_path(kit, other))
                      for other in kit.toolkit.languages],
        "alternates": [(other, root + page_path(kit, other)) for other in kit.toolkit.languages],
        "now_step": lambda steps: step_at(steps, top),
        "letter_preview": letter_preview,
        "built_text": local_date(kit.as_of.astimezone(kit.timezone), lang),
        "data_json": _script_json(page_data(kit, page, unit_words)),
    }
    return _env.get_template("page.html.j2").render(context)


def _script_json(value: Any) -> Markup:
    """JSON safe inside <script>: no "</script>" or "<!--" can end it early."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return Markup(text.replace("<", "\\u003c").replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


def page_data(kit: Kit, page: Page, unit_words: dict[str, tuple[str, str]]) -> dict[str, Any]:
    """What toolkit.js reads: the deadline, the page's words, every timed text."""
    words = WORDS[page.lang]
    timed: dict[str, list[Any]] = {}
    for post in page.posts:
        for row in post.rows:
            timed[row.id] = [[s.lo, _row_fields(s)] for s in row.steps]
    for call in page.calls:
        timed[call.id] = [[s.lo, {"text": s.text}] for s in call.script]
    letter = None
    if page.letter is not None:
        letter = {"to": page.letter.to, "subject": page.letter.subject, "body": page.letter.body}
    return {
        "deadline": int(kit.deadline.timestamp() * 1000),
        "lang": page.lang,
        "words": {"units": {u: list(w) for u, w in unit_words.items()},
                  **{k: words[k] for k in ("copied", "copy_failed", "mastodon_saved",
                                           "mastodon_bad", "mastodon_needed", "letter_missing")}},
        "timed": timed,
        "letter": letter,
    }


def _row_fields(step: RowStep) -> dict[str, str]:
    fields = {"text": step.copy, "copy": step.copy}
    for platform, s in step.shares.items():
        fields[platform] = s.link.split("?", 1)[1] if platform == "mastodon" else s.link
    return fields


def _span(kit: Kit, step: Step | RowStep) -> dict[str, str]:
    """When a step holds: after `from` up to and including `until` (the countdown floors);
    the first step from the build on."""
    start = kit.deadline - timedelta(seconds=step.hi + 1)
    return {"from": _iso(max(start, kit.as_of)),
            "until": _iso(kit.deadline - timedelta(seconds=step.lo))}


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


def index_data(kit: Kit) -> dict[str, Any]:
    """index.json: every text of the toolkit, for partners who reuse them."""
    t = kit.toolkit
    posts, calls, letter_out = [], [], []
    for lang, page in kit.pages.items():
        for post in page.posts:
            for row in post.rows:
                for platform in row.platforms:
                    posts.append({"key": post.key, "language": lang, "platform": platform,
                                  "versions": [{**_span(kit, s), "text": s.text,
                                                "post": s.shares[platform].post,
                                                "share": s.shares[platform].link,
                                                "length": s.shares[platform].length.length,
                                                "limit": s.shares[platform].length.limit}
                                               for s in row.steps]})
        for call in page.calls:
            calls.append({"language": lang, "name": call.name, "number": call.number,
                          "tel": f"tel:{call.tel}", "hours": call.hours,
                          "script": [{**_span(kit, s), "text": s.text} for s in call.script]})
        if page.letter is not None:
            letter_out.append({"language": lang, "to": page.letter.to,
                               "subject": page.letter.subject, "body": page.letter.body,
                               "blanks": [{"name": n, "label": label}
                                          for n, label in page.letter.blanks]})
    return {
        "generator": "tminus toolkit",
        "campaign": kit.slug,
        "title": {lang: p.title for lang, p in kit.pages.items()},
        "deadline": _iso(kit.deadline),
        "built_as_of": _iso(kit.as_of),
        "closed": kit.closed,
        "languages": list(t.languages),
        "hashtags": list(t.hashtags), "url": t.url, "via": t.via, "related": list(t.related),
        "note": "Each version holds after `from` until `until` (UTC). Mastodon links: put the "
                "server's name in place of {instance}. A letter is segments of text and named "
                "blanks; joined with the values, trimmed as the page does.",
        "posts": posts, "calls": calls, "letters": letter_out,
    }


# -- writing ---------------------------------------------------------------------------


def _check_output(output: Path) -> None:
    if output.exists() and not output.is_dir():
        raise TminusError(f"--output {output}: is a file; name a folder for the site")
    if output.is_dir() and any(output.iterdir()) and not (output / MARKER).is_file():
        raise TminusError(f"--output {output}: a folder tminus did not write (no {MARKER} in it); "
                          "name a new or empty folder")
    if not output.parent.is_dir():
        raise TminusError(f"--output {output}: the folder {output.parent} does not exist")


def _write(output: Path, files: dict[str, bytes]) -> None:
    """Write into a temporary folder next to `output`, then swap it into place."""
    _check_output(output)
    staging = Path(tempfile.mkdtemp(prefix=f".{output.name}.", dir=output.parent))
    try:
        for name, content in files.items():
            path = staging / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)
            path.chmod(0o644)           # a web host serves it to everyone
        staging.chmod(0o755)
        for sub in staging.iterdir():
            if sub.is_dir():
                sub.chmod(0o755)
        old = None
        if output.exists():
            old = output.with_name(f".{output.name}.old-{staging.name[-8:]}")
            output.rename(old)
        staging.rename(output)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except OSError as e:
        shutil.rmtree(staging, ignore_errors=True)
        raise TminusError(f"--output {output}: cannot write the site: {e.strerror or e}") from None
