"""Everything the supporters' page says, rendered and checked: `build_kit`.

Texts stay true as the countdown moves. A suggested post or call script is a template
of the countdown, so it is rendered for every step of the time left from the build to
the deadline, and the page shows the step the browser's clock is in. A step is a range
of whole seconds left (the countdown floors, as `content.countdown` does). Steps are
found by bisecting the time left along the deadline's own days, then hours, then
minutes: a range whose text is the same at both ends and in the middle is one step, any
other is cut finer. A minute is the finest step; a text that changes within a minute is
shown as it reads at the minute's last second (the least time left) and the build warns.

Each step of each post is checked, for every platform, with everything its share link
adds (X: hashtags, link and "via"), by the project's own length rules.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from content.campaign import Campaign
from content.countdown import t_minus
from content.errors import CampaignError, CampaignErrors
from content.render import Renderer, base_context, post_context
from content.toolkit import letter as letters
from content.toolkit.share import Extras, Share, share
from content.toolkit.spec import Source, Toolkit
from content.toolkit.words import PLATFORM_NAMES, WORDS, local_date

_UNITS = (86400, 3600, 60)             # day, hour, minute: steps follow the deadline's own
MANY_STEPS = 300                        # more than this makes a heavy page: say so
MAX_STEPS = 3000                        # more than this is refused: a page of megabytes
MAX_DAYS = 400                          # a toolkit is built in a campaign's last year
_COUNTDOWN = ("days_left", "hours_left", "minutes_left", "seconds_left", "time_left",
              "time_left_in", "due")
_UNSENDABLE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\u202a-\u202e\u2066-\u2069\ufeff]")


@dataclass(frozen=True)
class Step:
    """A text for the seconds left from `lo` to `hi` (both included)."""

    lo: int
    hi: int
    text: str


@dataclass(frozen=True)
class RowStep:
    """One step of a row of share buttons: the text shown, what Copy copies, and the
    share link of each platform of the row."""

    lo: int
    hi: int
    text: str
    copy: str
    shares: dict[str, Share]


@dataclass(frozen=True)
class Row:
    """Platforms whose text is the same at every step share one row of buttons; a post
    whose template says something else on X (a handle) gets a row of its own there."""

    id: str
    platforms: tuple[str, ...]
    steps: tuple[RowStep, ...]


@dataclass(frozen=True)
class Suggested:
    key: str
    number: int
    rows: tuple[Row, ...]


@dataclass(frozen=True)
class Call:
    id: str
    name: str
    number: str
    tel: str
    hours: str | None
    script: tuple[Step, ...]


@dataclass(frozen=True)
class FillIn:
    to: str | None
    subject: list[letters.Segment]
    body: list[letters.Segment]
    blanks: list[tuple[str, str]]           # (name, label)


@dataclass
class Page:
    """One language's page."""

    lang: str
    title: str
    intro: str | None
    closed_message: str
    deadline_text: str
    posts: list[Suggested] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)
    letter: FillIn | None = None


@dataclass
class Kit:
    slug: str
    deadline: datetime
    timezone: ZoneInfo
    as_of: datetime
    seconds_left: int                       # at the build; -1 once the deadline has passed
    toolkit: Toolkit
    pages: dict[str, Page]
    warnings: list[str] = field(default_factory=list)

    @property
    def closed(self) -> bool:
        return self.seconds_left < 0


class TooManySteps(Exception):
    """A text changes more than MAX_STEPS times before the deadline."""


def steps_of(render: Callable[[int], str], top: int) -> tuple[list[Step], bool]:
    """The steps of `render(seconds_left)` over 0..top, most time left first; and
    whether some text changes within a minute (shown at the minute's last second)."""
    cache: dict[int, str] = {}

    def at(s: int) -> str:
        if s not in cache:
            cache[s] = render(s)
        return cache[s]

    out: list[Step] = []
    finer = False

    def cover(lo: int, hi: int, level: int) -> None:
        nonlocal finer
        if len(out) > MAX_STEPS:
            raise TooManySteps
        if at(lo) == at(hi) == at((lo + hi) // 2):
            out.append(Step(lo, hi, at(lo)))
            return
        if level == len(_UNITS):
            finer = True
            out.append(Step(lo, hi, at(lo)))
            return
        unit = _UNITS[level]
        for k in range(hi // unit, lo // unit - 1, -1):
            cover(max(lo, k * unit), min(hi, (k + 1) * unit - 1), level + 1)

    cover(0, top, 0)
    merged: list[Step] = []
    for step in out:
        if merged and merged[-1].text == step.text:
            merged[-1] = Step(step.lo, merged[-1].hi, step.text)
        else:
            merged.append(step)
    return merged, finer


def step_at(steps: tuple[Step, ...] | list[Step], seconds_left: int) -> Step:
    """The step the page shows when `seconds_left` remain (the first before the build)."""
    for step in steps:
        if step.lo <= seconds_left:
            return step
    return steps[-1]


def seconds_left(deadline: datetime, at: datetime) -> int:
    """Whole seconds left, floored like the countdown; -1 at or after the deadline."""
    left = (deadline - at).total_seconds()
    return int(left) if left > 0 else -1


class _Builder:
    def __init__(self, campaign: Campaign, toolkit: Toolkit, as_of: datetime) -> None:
        self.campaign = campaign
        self.toolkit = toolkit
        self.renderer = Renderer(campaign.folder)
        self.file = str(campaign.file)
        self.top = seconds_left(campaign.deadline, as_of)
        self.errors: list[CampaignError] = []
        self.warnings: list[str] = []
        self.extras = Extras(hashtags=toolkit.hashtags, url=toolkit.url, via=toolkit.via,
                             related=toolkit.related)

    # -- rendering --------------------------------------------------------------------

    def _render(self, source: Source, key: str, line: int | None, context: dict[str, Any]) -> str:
        if source.template is not None:
            return self.renderer.render(source.template, context)
        try:
            return self.renderer.render(f"{self.file} [{key}]", context, source=source.text)
        except CampaignError as e:
            within = f" (line {e.line} of the text)" if e.line else ""
            raise CampaignError(e.message + within, file=self.file, key=key, line=line) from None

    def timed(self, source: Source, key: str, line: int | None, lang: str, platform: str,
              extra_vars: dict[str, Any]) -> tuple[list[Step], bool]:
        base = base_context(campaign=self.campaign, account="supporter", platform=platform,
                            extra_vars=extra_vars, language=lang)
        deadline = self.campaign.deadline

        def render(s: int) -> str:
            context = post_context(base, campaign=self.campaign,
                                   due=deadline - timedelta(seconds=s))
            text = self._render(source, key, line, context)
            if not text.strip() or _UNSENDABLE.search(text):
                what = ("an empty text" if not text.strip()
                        else "a text with control or direction-override characters")
                raise CampaignError(
                    f"renders to {what} at {t_minus(timedelta(seconds=s))} ({lang}, {platform})",
                    file=self.file, key=key, line=line)
            return text

        try:
            return steps_of(render, self.top)
        except TooManySteps:
            raise CampaignError(
                f"changes more than {MAX_STEPS:,} times before the deadline ({lang}, {platform}); "
                "count days (days_left) until the last days, then hours", file=self.file,
                key=key, line=line) from None

    # -- the parts of a page ----------------------------------------------------------

    def suggested(self, lang: str) -> list[Suggested]:
        out = []
        for n, spec in enumerate((p for p in self.toolkit.posts if lang in p.sources), start=1):
            key = f"toolkit.posts.{spec.key}"
            try:
                per_platform = {p: self.timed(spec.sources[lang], key, spec.line, lang, p, spec.vars)
                                for p in self.toolkit.platforms}
            except CampaignError as e:
                self.errors.append(e)
                continue
            if any(finer for _, finer in per_platform.values()):
                self.warnings.append(f"{self.file} [{key}] ({lang}): its text changes within a "
                                     "minute (seconds in it); the page shows it by the minute")
            steps = {p: s for p, (s, _) in per_platform.items()}
            if max(len(s) for s in steps.values()) > MANY_STEPS:
                self.warnings.append(f"{self.file} [{key}] ({lang}): {max(map(len, steps.values()))} "
                                     "versions over the countdown make a heavy page; "
                                     "days_left or hours_left change less often than time_left")
            self._advise(key, lang, spec.line, steps)
            rows = self._rows(spec.key, n, lang, steps, key, spec.line)
            out.append(Suggested(key=spec.key, number=n, rows=tuple(rows)))
        return out

    def _advise(self, key: str, lang: str, line: int | None, steps: dict[str, list[Step]]) -> None:
        for step in steps.get("x", []):
            mention = re.match(r"@\w+", step.text)
            if mention:
                handle = mention.group(0)
                self.warnings.append(
                    f"{self.file}:{line} [{key}] ({lang}): starts with {handle}; X shows a post "
                    f"that starts with a mention as a reply, seen only by people who follow "
                    f"{handle}; write .{handle} or move the mention later in the text")
                break
        for tag in self.toolkit.hashtags:
            if any(re.search(rf"(?<!\w){re.escape(tag)}(?!\w)", s.text, re.IGNORECASE)
                   for ss in steps.values() for s in ss):
                self.errors.append(CampaignError(
                    f"the text already holds {tag}, which every share link adds "
                    "(toolkit.hashtags); take it out of the text, or set toolkit.hashtags",
                    file=self.file, key=key, line=line))
                return

    def _rows(self, post_key: str, n: int, lang: str, steps: dict[str, list[Step]], key: str,
              line: int | None) -> list[Row]:
        same: dict[tuple[Step, ...], list[str]] = {}
        for platform, platform_steps in steps.items():
            same.setdefault(tuple(platform_steps), []).append(platform)
        groups = [tuple(g) for g in same.values()]
        rows: list[Row] = []
        for g, group in enumerate(groups):
            row_steps = []
            for i, step in enumerate(steps[group[0]]):
                shares = {p: share(p, steps[p][i].text, self.extras) for p in group}
                for s in shares.values():
                    if not s.length.ok:
                        self.errors.append(CampaignError(
                            f"{s.length.length} {s.length.unit} on {PLATFORM_NAMES[s.platform]} "
                            f"with what its share link adds, over the limit of {s.length.limit}, "
                            f"at {t_minus(timedelta(seconds=step.hi))} ({lang}); shorten the text",
                            file=self.file, key=key, line=line))
                        return rows
                neutral = [s for p, s in shares.items() if p != "x"]
                copy = (neutral[0] if neutral else shares["x"]).post
                row_steps.append(RowStep(step.lo, step.hi, step.text, copy, shares))
            rows.append(Row(id=f"p{n}-{g}", platforms=group, steps=tuple(row_steps)))
        return rows

    def calls(self, lang: str) -> list[Call]:
        out = []
        for i, spec in enumerate(self.toolkit.calls):
            key = f"toolkit.calls[{i}].script"
            try:
                script, _ = self.timed(spec.script[lang], key, spec.line, lang, "phone", {})
            except CampaignError as e:
                self.errors.append(e)
                continue
            out.append(Call(id=f"c{i}", name=spec.name[lang], number=spec.number, tel=spec.tel,
                            hours=spec.hours[lang] if spec.hours else None, script=tuple(script)))
        return out

    def letter(self, lang: str) -> FillIn | None:
        spec = self.toolkit.letter
        if spec is None:
            return None
        base = base_context(campaign=self.campaign, account="supporter", platform="email",
                            extra_vars={}, language=lang)
        declared = [b.name for b in spec.blanks]
        line = spec.line
        parts = []
        for what, source in (("subject", spec.subject[lang]), ("body", spec.body[lang])):
            key = f"toolkit.letter.{'subject' if what == 'subject' else 'text'}"
            used, misused = letters.blanks_used(self.renderer, source.template or key, source.text)
            if misused:
                self.errors.append(CampaignError(letters.MISUSE, file=self.file, key=key, line=line))
                return None
            unknown = [u for u in used if u not in declared]
            if unknown:
                self.errors.append(CampaignError(
                    f"{{{{ fill.{unknown[0]} }}}} is not a blank; declare it in "
                    f"[toolkit.letter.blanks] (declared: {', '.join(declared) or 'none'})",
                    file=self.file, key=key, line=line))
                return None

            def render(values: dict[str, str], source: Source = source, key: str = key) -> str:
                return self._letter_render(source, key, line, letters.context_with(base, values))

            try:
                segments = letters.compile_segments(render, declared)
                letters.check_segments(segments, render, declared, file=self.file, key=key)
            except CampaignError as e:
                self.errors.append(e)
                return None
            parts.append(segments)
        return FillIn(to=spec.to, subject=parts[0], body=parts[1],
                      blanks=[(b.name, b.label[lang]) for b in spec.blanks])

    def _letter_render(self, source: Source, key: str, line: int | None,
                       context: dict[str, Any]) -> str:
        try:
            return self._render(source, key, line, context)
        except CampaignError as e:
            name = next((n for n in _COUNTDOWN if f"undefined variable: {n}" in e.message), None)
            if name is None:
                raise
            raise CampaignError(
                f"`{name}` is not there: the letter reads the same whatever the day it is sent; "
                "name the deadline instead, e.g. {{ deadline.strftime(\"%B\") }} {{ deadline.day }}",
                file=e.file, key=key, line=e.line) from None


def build_kit(campaign: Campaign, toolkit: Toolkit, *, as_of: datetime) -> Kit:
    """Every page of the toolkit as of `as_of`; raise CampaignErrors with every problem.
    Once the deadline has passed the pages only say that the campaign has closed."""
    b = _Builder(campaign, toolkit, as_of)
    if b.top > MAX_DAYS * 86400:
        raise CampaignErrors([CampaignError(
            f"the deadline is {b.top // 86400:,} days after the build; build the toolkit within "
            f"{MAX_DAYS} days of it (or give --as-of)", file=b.file, key="campaign.deadline")])
    local_deadline = campaign.deadline.astimezone(campaign.timezone)
    pages = {}
    for lang in toolkit.languages:
        when = local_date(local_deadline, lang)
        closed = (toolkit.closed or {}).get(lang) or WORDS[lang]["closed_default"].format(when=when)
        page = Page(lang=lang, title=(toolkit.title or {}).get(lang) or campaign.title,
                    intro=(toolkit.intro or {}).get(lang), closed_message=closed,
                    deadline_text=when)
        if b.top >= 0:
            page.posts, page.calls, page.letter = b.suggested(lang), b.calls(lang), b.letter(lang)
        pages[lang] = page
    if b.errors:
        raise CampaignErrors(b.errors)
    return Kit(slug=campaign.slug, deadline=campaign.deadline, timezone=campaign.timezone, as_of=as_of,
               seconds_left=b.top, toolkit=toolkit, pages=pages, warnings=b.warnings)
