"""A campaign expanded into concrete posts: one per (post, account, fire time).

Each `PlannedPost` carries its final text, rendered for its own scheduled time, its
length check for its platform, and the warnings a person should see in the preview.
Problems that make a post unsendable (a template error, text too long, the same text
twice on one account, identical text on two X accounts) are collected as errors.
"""

from __future__ import annotations

import dataclasses
import functools
import gc
import operator
from array import array
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, NamedTuple

from content.campaign import Campaign, MediaSpec, PostSpec
from content.chars import forbidden_character
from content.entities import Glue, own_links
from content.errors import CampaignError
from content.fork import Parts, forking_is_safe
from content.limits import MAX_POSTS_PER_CAMPAIGN
from content.media import Image
from content.media import problems as media_problems
from content.platforms import platform
from content.rules import LengthCheck
from content.schedule import Fire, ScheduleError, expand
from content.variables import base_context, post_context, time_context

if TYPE_CHECKING:
    from content.render import Apart, Renderer


@dataclass(frozen=True)
class PlannedPost:
    plan_key: str               # stable identity: re-planning never duplicates
    post_key: str
    account: str
    platform: str
    due_at: datetime            # UTC
    not_after: datetime         # UTC, never after the deadline
    text: str
    length: LengthCheck
    language: str | None = None
    visibility: str | None = None
    content_warning: str | None = None
    media: tuple[MediaSpec, ...] = ()
    warnings: tuple[str, ...] = ()
    reply_to_key: str | None = None   # a thread's later post: the plan key it replies to
    thread_root_key: str | None = None

    @functools.cached_property
    def _options(self) -> dict[str, Any]:
        return {"language": self.language, "visibility": self.visibility,
                "content_warning": self.content_warning,
                "media": [{"path": m.path, "alt": m.alt} for m in self.media]}

    def options(self) -> dict[str, Any]:
        """Platform options stored with the post (language, visibility, media, ...)."""
        return dict(self._options)

    def __reduce__(self) -> tuple[Any, ...]:
        # pickled as its values in order: a forked child sends 90,000 of them to the
        # process that writes them, which loads a tuple each in about two thirds of the
        # time of the default's dict of fifteen names
        return (_planned, _values(self))


_FIELDS = tuple(f.name for f in dataclasses.fields(PlannedPost))
_values = operator.attrgetter(*_FIELDS)


def _planned(*values: Any) -> PlannedPost:
    """A pickled `PlannedPost` again, as the default unpickling makes one (its fields
    set in its dict, as a frozen dataclass allows nothing else)."""
    post = object.__new__(PlannedPost)
    post.__dict__.update(zip(_FIELDS, values, strict=True))
    return post


@dataclass
class Expansion:
    posts: list[PlannedPost] = field(default_factory=list)
    errors: list[CampaignError] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def plan_key(post_key: str, account: str, due: datetime, part: int = 1) -> str:
    """`key@account@time`; a thread's later posts are `key#2@...`, `key#3@...`."""
    suffix = f"#{part}" if part > 1 else ""
    return f"{post_key}{suffix}@{account}@{_stamp(due)}"


@functools.lru_cache(maxsize=4096)
def _stamp(due: datetime) -> str:
    utc = due.astimezone(UTC)
    # microseconds only when there are some: two times in one second stay distinct
    return f"{utc:%Y%m%dT%H%M%S}" + (f".{utc.microsecond:06d}" if utc.microsecond else "") + "Z"


def expand_campaign(campaign: Campaign, *, limits: dict[str, int] | None = None,
                    now: datetime | None = None,
                    ready: Callable[[list[PlannedPost], Any], None] | None = None,
                    share: float | None = None,
                    prepare: Callable[[list[PlannedPost]], Any] | None = None) -> Expansion:
    """Every post of `campaign`, rendered and checked. `limits` overrides the length
    limit per account (a Mastodon instance's own `max_characters`). With `now`, fire
    times already past are left out with a warning.

    `ready` is given the posts part by part, in the order of `Expansion.posts`, as soon
    as each part is rendered (while later ones still are): the planner writes them
    meanwhile. It is given every post of an expansion without errors; in one with
    errors it may be given some posts or none, which the caller throws away. `share`:
    this process's part of the units when a child renders the rest (`SHARE`, or
    `SHARE_WRITING` with `ready`, unless said). `prepare(posts)` is made of each part
    in the process that rendered it, and given to `ready` with the part (None without
    it): the planner's rows as the database stores them, made by the child for the
    parts it renders, so that the process writing them only writes.

    Python's cycle collector is off meanwhile (here and in the child): an expansion
    makes some five objects a post that live as long as it does, and each collection
    walked them all again (a sixth of checking 100,000 posts). What it leaves in
    cycles (a template error's traceback) is collected once it is done."""
    was = gc.isenabled()
    gc.disable()
    try:
        return _expand(campaign, limits=limits or {}, now=now, ready=ready, share=share,
                       prepare=prepare)
    finally:
        if was:
            gc.enable()


def _expand(campaign: Campaign, *, limits: dict[str, int], now: datetime | None,
            ready: Callable[[list[PlannedPost], Any], None] | None, share: float | None,
            prepare: Callable[[list[PlannedPost]], Any] | None) -> Expansion:
    """`expand_campaign`, the collector off."""
    result = Expansion()
    file = str(campaign.file)
    schedules: dict[str, list[Fire] | ScheduleError] = {}
    # First what is to be rendered, in order: each step an error found on the way or a
    # unit (one post for one account at one time), so that errors come out in the same
    # order however the units are rendered.
    steps: list[CampaignError | int] = []
    units: list[_Unit] = []
    total = 0
    for spec in campaign.posts:
        where = f"posts.{spec.key}"
        steps.extend(_media_errors(campaign, spec, file))
        try:
            fires = _fires(spec.schedule, campaign, schedules)
        except ScheduleError as e:
            steps.append(CampaignError(str(e), file=file, key=f"{where}.schedule", line=spec.line))
            continue
        total += len(fires) * len(spec.accounts) * (1 + len(spec.thread))
        if total > MAX_POSTS_PER_CAMPAIGN:
            steps.append(CampaignError(
                f"the campaign expands to more than {MAX_POSTS_PER_CAMPAIGN:,} posts by here; "
                "narrow the schedules (`from`, `until`, the cron expression)",
                file=file, key=f"{where}.schedule", line=spec.line))
            break
        if not fires:
            result.warnings.append(f"{file} [{where}]: the schedule expands to no time before "
                                   "the deadline")
        skipped = 0
        glue = Glue.of(tuple(campaign.hashtags),
                       tuple(own_links([*campaign.vars.values(), *spec.vars.values()])))
        for fire in fires:
            if now is not None and fire.at <= now:
                skipped += 1
                continue
            for account_name in spec.accounts:
                steps.append(len(units))
                units.append(_Unit(spec, account_name, fire.at, fire.warning, glue))
        if skipped:
            result.warnings.append(f"{file} [{where}]: {skipped} time(s) already past are left out")
    if any(isinstance(step, CampaignError) for step in steps):
        ready = None   # the expansion fails whatever the units give: nothing to write
    if share is None:
        share = SHARE if ready is None else SHARE_WRITING
    repeats = _Repeats()
    outcomes, order = _render_units(campaign, units, limits, file, ready, share, prepare,
                                    repeats)
    for step in steps:
        if isinstance(step, CampaignError):
            result.errors.append(step)
            continue
        outcome = outcomes[step]
        if isinstance(outcome, CampaignError):
            result.errors.append(outcome)
        else:
            result.posts.extend(outcome)
    if repeats.found:   # (the posts in their steps' order, for the errors' order)
        _check_duplicates(result, file)
    result.errors = _once(result.errors)
    for p in result.posts:
        if not p.length.ok:
            unit = p.length.unit
            result.errors.append(CampaignError(
                f"{p.length.length} {unit} is over {p.platform}'s limit of {p.length.limit} "
                f"for {p.account} at {p.due_at.astimezone(campaign.timezone):%Y-%m-%d %H:%M}; "
                "shorten the text", file=file, key=f"posts.{p.post_key}"))
    if result.errors:
        result.posts.sort(key=lambda p: (p.due_at, p.account, p.post_key))
    else:   # the units' posts in the order they were rendered in: that order, sorted already
        result.posts = [p for i in order for p in outcomes[i]]  # type: ignore[union-attr]
    return result


class _Unit(NamedTuple):
    """One post (with the rest of its thread) for one account at one fire time."""

    spec: PostSpec
    account: str
    due: datetime
    dst_warning: str | None
    glue: Glue          # the glued links check, with the post's own links


# From this many units on, and where a process can fork safely (Linux, one thread),
# part of them are rendered in a child process while this one renders the rest (and
# the caller writes what is ready): planning 100,000 posts is mostly rendering and
# checking them, and there are two cores. Below it, starting a child costs more than
# it saves.
FORK_FROM = 20_000
# This process's share of the units when they are split: half, or less where the
# caller writes the posts as they come (`ready`), since writing them is its work too,
# or compares them with what it wrote before (a re-plan: less work than writing).
# Measured on 100,000 posts (the CPU of each process, bench/README.md): a first plan's
# parent spends about 21 µs a post writing what the child made (rows in storage form,
# `prepare`), a re-plan's about 5 µs comparing after reading the rows back, against
# some 25 µs to render one (most texts rendered apart: `Renderer.render_apart`); so a
# first plan's parent renders a tenth and writes, the writing being the longer part
# of the two processes' work (shares of 0.3 and 0.4: parent 5.0 s and 3.5 s of CPU
# against 4.3 s and 2.8 s with these, at load 16).
SHARE, SHARE_WRITING, SHARE_COMPARING = 0.5, 0.1, 0.15
CHUNK = 2_000   # units to a part the child sends: the caller writes while it renders on

Outcome = list[PlannedPost] | CampaignError


def _render_units(campaign: Campaign, units: Sequence[_Unit], limits: dict[str, int],
                  file: str, ready: Callable[[list[PlannedPost], Any], None] | None,
                  share: float, prepare: Callable[[list[PlannedPost]], Any] | None,
                  repeats: _Repeats) -> tuple[list[Outcome], list[int]]:
    """Each unit's posts, or the error that makes them unsendable, in the units' order.
    The units are rendered in the order of their posts in the result (by time, account,
    post key), so that `ready` can be given them part by part as they are made; each
    part's texts' keys are shown to `repeats` as it comes. Also returns that order (of the
    units' indexes)."""
    # Jinja2 only where a text is rendered: a rehearsal's parent process takes its
    # folder expanded by a child and renders none (tests/test_startup.py)
    from content.render import Renderer
    posts = _Posts(campaign, Renderer(campaign.folder), limits, file, APART)

    def outcomes(part: Sequence[int]) -> list[Outcome]:
        out: list[Outcome] = []
        thread, one = posts.thread, posts.one
        for i in part:
            u = units[i]
            try:
                out.append(thread(u) if u.spec.thread else
                           [one(u.spec, u.account, u.due, u.dst_warning, u.glue)])
            except CampaignError as e:
                out.append(e)
        return out

    # (a stable sort: units alike in all three keep their order, as their posts do)
    order = sorted(range(len(units)), key=lambda i: (units[i].due, units[i].account,
                                                     units[i].spec.key))
    result: list[Outcome | None] = [None] * len(units)
    failed = False

    def posts_of(got: list[Outcome]) -> list[PlannedPost] | None:
        """The part's posts; None if a unit failed (the expansion fails)."""
        if any(isinstance(outcome, CampaignError) for outcome in got):
            return None
        return [p for outcome in got for p in outcome]  # type: ignore[union-attr]

    def rendered(part: Sequence[int]) -> tuple[list[Outcome], Any, array[int]]:
        """A part's outcomes, what `prepare` makes of its posts, and their texts' keys
        for `repeats` (made where the part renders: a child's parts cost the process
        that writes them nothing but reading)."""
        got = outcomes(part)
        posts = posts_of(got) if prepare is not None and ready is not None else None
        return (got, None if posts is None or prepare is None else prepare(posts),
                _Repeats.keys_of(got))

    def done(part: Sequence[int], got: list[Outcome], prepared: Any, keys: array[int]) -> None:
        # once a unit failed, the expansion fails: nothing more is worth writing
        nonlocal failed
        for i, outcome in zip(part, got, strict=True):
            result[i] = outcome
        repeats.see(keys)
        if ready is None or failed:
            return
        posts = posts_of(got)
        if posts is None:
            failed = True
        else:
            ready(posts, prepared)

    if len(units) < FORK_FROM or not forking_is_safe():
        done(order, *rendered(order))
    else:
        mine = order[:int(len(order) * share)]
        theirs = [order[i:i + CHUNK] for i in range(len(mine), len(order), CHUNK)]
        with Parts(lambda: (rendered(part) for part in theirs)) as child:
            done(mine, *rendered(mine))
            received = 0
            for got, prepared, keys in child.parts():
                done(theirs[received], got, prepared, keys)
                received += 1
        # a child that failed in any way (it should not): the rest rendered here instead
        for part in theirs[received:]:
            done(part, *rendered(part))
    assert all(outcome is not None for outcome in result)
    return result, order  # type: ignore[return-value]


def _fires(schedule: Any, campaign: Campaign,
           seen: dict[str, list[Fire] | ScheduleError]) -> list[Fire]:
    """The fire times of `schedule`, expanded once per campaign however many posts share
    it (posts for groups of accounts often do; a cron walk costs a few ms per 100)."""
    key = repr(schedule)   # a TOML value: strings, numbers, datetimes, lists, tables
    found = seen.get(key)
    if found is None:
        try:
            found = expand(schedule, deadline=campaign.deadline, tz=campaign.timezone)
        except ScheduleError as e:
            found = e
        seen[key] = found
    if isinstance(found, ScheduleError):
        raise found
    return found


def _media_errors(campaign: Campaign, spec: PostSpec, file: str) -> list[CampaignError]:
    """Each image of a post checked against every platform it goes to (the registry's
    media limits: count, type by its bytes, size, alt text length), once per post."""
    if not spec.media:
        return []
    images = [Image(m.path, m.alt) for m in spec.media]
    out: list[CampaignError] = []
    said: set[str] = set()
    for name in spec.accounts:
        account = campaign.accounts.get(name)
        if account is None:
            continue
        for problem in media_problems(images, account.platform):
            if problem not in said:
                said.add(problem)
                out.append(CampaignError(f"{problem} (account {name})", file=file,
                                         key=f"posts.{spec.key}.media", line=spec.line))
    return out


# Whether a text is rendered once for the accounts alike (`Renderer.render_apart`), or
# for each post: off only to compare the two (tests/test_render_apart.py).
APART = True


class _Lane:
    """What every post of one (post, account) has alike, or of one later post of its
    thread (`source`), looked up once: 100,000 posts are a few hundred lanes."""

    __slots__ = ("base", "checks", "content_warning", "field", "inline", "key",
                 "language", "limit", "media", "name", "platform", "rule", "times",
                 "visibility")

    def __init__(self, campaign: Campaign, spec: PostSpec, account_name: str,
                 source: tuple[str, str] | None, limit: int | None, file: str,
                 groups: dict[tuple[object, ...], dict[datetime, _At]],
                 checks: dict[tuple[object, ...], dict[tuple[int, bool], LengthCheck]]) -> None:
        account = campaign.accounts[account_name]
        self.platform = account.platform
        self.language = spec.language or account.language
        self.visibility = spec.visibility or account.visibility
        self.content_warning, self.media = spec.content_warning, spec.media
        self.base = base_context(campaign=campaign, account=account_name,
                                 platform=account.platform, extra_vars=spec.vars,
                                 language=self.language)
        self.inline: str | None
        if spec.template is not None and source is None:
            self.name, self.field, self.inline = spec.template, "template", None
        else:
            self.field, self.inline = source or ("text", spec.text or "")
            self.name = f"{file} [posts.{spec.key}.{self.field}]"
        self.key = f"{spec.key}@{account_name}@"     # a plan key but for its time
        # The text rendered once for all accounts alike in everything else that reaches
        # the template (the same template, vars, platform, language and time): 100,000
        # posts of 100 accounts are a thousand such renders, not 100,000. By time, each
        # with the expiry (hence `expires` in the key too).
        # (repr tells apart what prints apart: 1, 1.0 and true; "1" and 1)
        group = (self.name, self.inline, repr(spec.vars), account.platform, self.language,
                 spec.expires)
        self.times = groups.setdefault(group, {})
        # the length check, by platform, limit and content warning: each (length, ok)
        # one object (a few hundred among 100,000 posts, pickled once each by a child)
        self.rule = platform(account.platform).length
        self.limit = self.rule.limit if limit is None else limit
        self.checks = checks.setdefault(
            (account.platform, self.limit, spec.content_warning or ""), {})

    def length(self, text: str) -> LengthCheck:
        """`check_length(platform, text, limit=limit, spoiler_text=content_warning)`."""
        rule = self.rule
        if self.limit < 1:   # (said for the first post measured, as `check_length` does)
            raise ValueError(f"limit must be positive, got {self.limit}")
        length = rule.count(text, self.content_warning or "")
        ok = 0 < length <= self.limit and rule.accepts(text)
        check = self.checks.get((length, ok))
        if check is None:
            check = self.checks[(length, ok)] = LengthCheck(self.platform, length, self.limit,
                                                             ok, rule.unit)
        return check


class _At(NamedTuple):
    """A group's text at one time, and what else its posts at that time share."""

    apart: Apart | None
    not_after: datetime
    stamp: str          # the time in the plan key


class _Posts:
    """Each unit's post (or posts, a thread), rendered and checked, with what posts
    share made once: the lanes, each group's text by time, the contexts by time, equal
    length checks, expiries and warnings as one object each."""

    def __init__(self, campaign: Campaign, renderer: Renderer, limits: dict[str, int],
                 file: str, apart: bool) -> None:
        self.campaign, self.renderer, self.limits, self.file = campaign, renderer, limits, file
        self.apart = apart
        self.tags = [h.lower() for h in campaign.hashtags]
        self.lanes: dict[tuple[str, str, tuple[str, str] | None], _Lane] = {}
        self.groups: dict[tuple[object, ...], dict[datetime, _At]] = {}
        self.checks: dict[tuple[object, ...], dict[tuple[int, bool], LengthCheck]] = {}
        self.times: dict[datetime, dict[str, Any]] = {}
        self.shared: dict[object, Any] = {}

    def thread(self, u: _Unit) -> list[PlannedPost]:
        """The post, and the rest of its thread if it has one: each later post replies to
        the one before and goes out right after it."""
        spec, account_name, due = u.spec, u.account, u.due
        first = self.one(spec, account_name, due, u.dst_warning, u.glue)
        posts = [first]
        for n, source in enumerate(spec.thread, start=2):
            part = self.one(spec, account_name, due, None, u.glue, (f"thread[{n - 2}]", source))
            posts.append(dataclasses.replace(
                part, plan_key=plan_key(spec.key, account_name, due, n),
                reply_to_key=posts[-1].plan_key, thread_root_key=first.plan_key,
                media=(), warnings=tuple(w for w in part.warnings if "hashtags" not in w)))
        return posts

    def one(self, spec: PostSpec, account_name: str, due: datetime, dst_warning: str | None,
            glue: Glue, source: tuple[str, str] | None = None) -> PlannedPost:
        """One post. Its length check, warnings and expiry are shared with the posts
        that have equal ones: 100,000 posts hold a few hundred distinct ones, and a
        child process's posts are pickled (each shared object once)."""
        lane = self.lanes.get((spec.key, account_name, source))
        if lane is None:
            lane = self.lanes[(spec.key, account_name, source)] = _Lane(
                self.campaign, spec, account_name, source, self.limits.get(account_name),
                self.file, self.groups, self.checks)
        at = lane.times.get(due)
        if at is None:
            at = self._at(lane, spec, due)
        apart = at.apart
        text = None if apart is None else apart.text(account_name)   # nearly every post
        if text is None:
            text = self._render(lane, spec, due)
            clean = False
        else:
            clean = apart.is_clean(account_name)  # type: ignore[union-attr]
        if not clean:
            _check_text(text, spec, source, account_name, due, self.campaign, self.file)
        check = lane.length(text)
        lowered = text.lower()
        tagged = not self.tags
        for h in self.tags:
            if h in lowered:
                tagged = True
                break
        glued = glue(text)
        if dst_warning or not tagged or glued:
            warnings = [dst_warning] if dst_warning else []
            if not tagged:
                warnings.append(NO_HASHTAG)
            said = tuple(warnings + glued)
            said = self.shared.setdefault(said, said)
        else:
            said = ()
        # made as `_planned` makes an unpickled one: the frozen dataclass's `__init__`
        # sets its fifteen fields one call at a time (2.8 µs a post, against 0.8)
        post = _new(PlannedPost)
        post.__dict__.update(zip(_FIELDS, (
            lane.key + at.stamp, spec.key, account_name, lane.platform, due, at.not_after,
            text, check, lane.language, lane.visibility, lane.content_warning, lane.media,
            said, None, None), strict=True))
        return post

    def _at(self, lane: _Lane, spec: PostSpec, due: datetime) -> _At:
        campaign = self.campaign
        apart = None
        if self.apart:
            apart = self.renderer.render_apart(
                lane.name, post_context(lane.base, campaign=campaign, due=due,
                                        timed=self._timed(due)), source=lane.inline)
        not_after = min(due + spec.expires, campaign.deadline)
        not_after = self.shared.setdefault((not_after, not_after.tzinfo), not_after)  # equal, alike
        at = _At(apart, not_after, _stamp(due))
        lane.times.setdefault(due, at)
        return at

    def _timed(self, due: datetime) -> dict[str, Any]:
        timed = self.times.get(due)
        if timed is None:
            timed = self.times[due] = time_context(self.campaign, due)
        return timed

    def _render(self, lane: _Lane, spec: PostSpec, due: datetime) -> str:
        """The post's text rendered on its own (a template that does more with the
        account than print it, or one that fails: the error names the post)."""
        context = post_context(lane.base, campaign=self.campaign, due=due, timed=self._timed(due))
        try:
            return self.renderer.render(lane.name, context, source=lane.inline)
        except CampaignError as e:
            if lane.inline is None:     # a template file: the error names it and its line
                raise
            # point at the post in campaign.toml; the template line is the text's own
            within = f" (line {e.line} of the text)" if e.line else ""
            raise CampaignError(e.message + within, file=self.file,
                                key=f"posts.{spec.key}.{lane.field}", line=spec.line) from None


_new = object.__new__


def _once(errors: list[CampaignError]) -> list[CampaignError]:
    """Each problem once: a template that fails, fails the same way for every post it
    renders (12 fire times, 12 times the same line), so it is said once, with how many."""
    counts: dict[tuple[str | None, str | None, int | None, str], int] = {}
    first: dict[tuple[str | None, str | None, int | None, str], CampaignError] = {}
    for e in errors:
        key = (e.file, e.key, e.line, e.message)
        counts[key] = counts.get(key, 0) + 1
        first.setdefault(key, e)
    return [e if counts[k] == 1 else
            CampaignError(f"{e.message} (the same for {counts[k]} posts)", file=e.file, key=e.key,
                          line=e.line)
            for k, e in first.items()]


def _check_text(text: str, spec: PostSpec, source: tuple[str, str] | None, account: str,
                due: datetime, campaign: Campaign, file: str) -> None:
    """A rendered text that is empty or holds a character the approver cannot see (it
    can come from a var as well as from the template) is an error naming the post."""
    if text.strip() and forbidden_character(text) is None:
        return   # nearly every post: the message below is not built for nothing
    field = source[0] if source else "template" if spec.template else "text"
    at = f"{account} at {due.astimezone(campaign.timezone):%Y-%m-%d %H:%M}"
    where = f" ({spec.template})" if spec.template and source is None else ""
    if not text.strip():
        raise CampaignError(f"the text{where} comes out empty for {at}; every post needs "
                            "some text", file=file, key=f"posts.{spec.key}.{field}", line=spec.line)
    problem = forbidden_character(text)
    if problem:
        raise CampaignError(f"the text{where} for {at} {problem}", file=file,
                            key=f"posts.{spec.key}.{field}", line=spec.line)
NO_HASHTAG = "none of the campaign's hashtags is in this post"


def hashtag_warnings(text: str, hashtags: Sequence[str]) -> list[str]:
    """The warning a post gets when it carries none of the campaign's hashtags (for a
    text a person edited; planning checks the same with the tags lowered once)."""
    lowered = text.lower()
    return [NO_HASHTAG] if hashtags and not any(h.lower() in lowered for h in hashtags) else []


def duplicate_key(text: str) -> str:
    """Texts with equal keys are the same post to a platform: X refuses a repeat, and
    neither spacing nor case makes two texts differ."""
    return " ".join(text.split()).casefold()


def may_not_repeat(account: str, platform: str, other_account: str, other_platform: str) -> bool:
    """The duplicate rule's reach: the same text may not go out twice on one account
    (X and others reject repeats), nor on two X accounts (X's automation rules forbid
    identical posts across accounts, even when queued)."""
    return account == other_account or (platform == "x" and other_platform == "x")


class _Repeats:
    """Whether any two posts have texts with equal keys, seen part by part as they are
    rendered (in a pipelined plan, while the child renders on): nearly no campaign has
    any, and then `_check_duplicates`, which names them, need not group 100,000 posts
    again once all are rendered. A part's keys come as their hashes (`keys_of`, in the
    process that rendered it: a forked child hashes as its parent does); two texts
    whose keys differ but hash alike only make `_check_duplicates` look, and find
    nothing."""

    def __init__(self) -> None:
        self.keys: set[int] = set()
        self.found = False

    @staticmethod
    def keys_of(outcomes: Sequence[Outcome]) -> array[int]:
        """The hashes of the keys of the posts among `outcomes`."""
        return array("q", [hash(duplicate_key(p.text)) for outcome in outcomes
                           if not isinstance(outcome, CampaignError) for p in outcome])

    def see(self, keys: array[int]) -> None:
        before = len(self.keys)
        self.keys.update(keys)
        if len(self.keys) - before < len(keys):
            self.found = True


def _check_duplicates(result: Expansion, file: str) -> None:
    by_key: dict[str, list[PlannedPost]] = defaultdict(list)
    for p in result.posts:
        by_key[duplicate_key(p.text)].append(p)
    for same in by_key.values():
        if len(same) == 1:
            continue   # nearly every text: one post cannot repeat itself
        for account in sorted({p.account for p in same}):
            mine = [p for p in same if p.account == account]
            if len(mine) > 1:
                keys = sorted({p.post_key for p in mine})
                result.errors.append(CampaignError(
                    f"the same text goes out {len(mine)} times on {account} (X and others "
                    "reject repeats); make each one differ, e.g. with {{ time_left }}",
                    file=file, key="posts." + ",".join(keys)))
        x_accounts = sorted({p.account for p in same if p.platform == "x"})
        if len(x_accounts) > 1:
            result.errors.append(CampaignError(
                f"identical text on X accounts {', '.join(x_accounts)} (X's automation "
                f"rules forbid it): \"{duplicate_key(same[0].text)[:60]}…\"", file=file,
                key="posts"))
