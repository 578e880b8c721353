"""Reading a campaign folder: `campaign.toml` plus its templates.

`load_campaign(folder)` returns a validated `Campaign` or raises `CampaignErrors` with
every problem found, each naming the file, the key (and line where it can) and what
would be right. Nothing here touches the database or the network.
"""

from __future__ import annotations

import contextlib
import difflib
import functools
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from content import limits
from content.chars import forbidden_character
from content.errors import CampaignError, CampaignErrors
from content.files import FileProblem, load_toml, read_text
from content.paths import CAMPAIGN_FILE, PathProblem, inside
from content.platforms import PLATFORMS
from content.schedule import ScheduleError, parse_duration
from content.toolkit import Toolkit, parse_toolkit

VISIBILITIES = ("public", "unlisted", "private", "direct")
DEFAULT_EXPIRES = timedelta(hours=2)   # a countdown post more than 2 h late says the wrong thing

# fullmatch, not ^...$: "$" also matches before a final newline ("slug\n")
_SLUG = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,62}")
_PREFIX = re.compile(r"[A-Z][A-Z0-9_]{0,40}")

_TOP_KEYS = {"campaign", "vars", "accounts", "posts", "toolkit"}
_CAMPAIGN_KEYS = {"slug", "title", "deadline", "timezone", "hashtags", "expires"}
_ACCOUNT_KEYS = {"platform", "credentials", "tier", "budget", "language", "visibility"}
_BUDGET_KEYS = {"posts", "per"}
_POST_KEYS = {"key", "template", "text", "accounts", "schedule", "expires", "vars",
              "language", "visibility", "content_warning", "media", "thread"}
_MEDIA_KEYS = {"path", "alt"}


@dataclass(frozen=True)
class BudgetSpec:
    """A rate budget from the campaign file: at most `posts` per `per`."""

    posts: int
    per: timedelta


@dataclass(frozen=True)
class AccountSpec:
    name: str
    platform: str
    credentials: str            # env prefix: TMINUS_<credentials>_*
    tier: str
    budget: BudgetSpec | None = None
    language: str | None = None
    visibility: str | None = None


@dataclass(frozen=True)
class MediaSpec:
    path: str
    alt: str


@dataclass(frozen=True)
class PostSpec:
    key: str
    accounts: tuple[str, ...]
    schedule: Any               # expanded by content.schedule.expand
    template: str | None = None
    text: str | None = None
    expires: timedelta = DEFAULT_EXPIRES
    vars: dict[str, Any] = field(default_factory=dict)
    language: str | None = None
    visibility: str | None = None
    content_warning: str | None = None
    media: tuple[MediaSpec, ...] = ()
    thread: tuple[str, ...] = ()   # further posts, each a reply to the one before
    line: int | None = None


@dataclass(frozen=True)
class Campaign:
    slug: str
    title: str
    deadline: datetime          # aware, UTC
    timezone: ZoneInfo
    hashtags: tuple[str, ...]
    vars: dict[str, Any]
    accounts: dict[str, AccountSpec]
    posts: tuple[PostSpec, ...]
    folder: Path
    toolkit: Toolkit | None = None      # what supporters are given (content.toolkit)
    warnings: tuple[str, ...] = ()      # worth a look, not wrong (a deadline's offset)

    @property
    def file(self) -> Path:
        return self.folder / CAMPAIGN_FILE


class _Collector:
    """Gathers every problem so `validate` can print them all at once."""

    def __init__(self, file: str, text: str) -> None:
        self.file = file
        self.lines = text.splitlines()
        self.errors: list[CampaignError] = []
        self.warnings: list[str] = []

    def add(self, message: str, key: str | None = None, line: int | None = None) -> None:
        self.errors.append(CampaignError(message, file=self.file, key=key, line=line))

    def warn(self, message: str, key: str | None = None, line: int | None = None) -> None:
        self.warnings.append(CampaignError(message, file=self.file, key=key, line=line).render())

    def text(self, value: str, key: str, line: int | None) -> bool:
        """Check a text the user wrote (a title, a post, a var): length and characters
        (content/chars.py). False, with the problem added, if it is refused."""
        if len(value) > limits.MAX_TEXT_CHARS:
            self.add(f"{len(value):,} characters long; at most {limits.MAX_TEXT_CHARS:,}",
                     key=key, line=line)
            return False
        problem = forbidden_character(value)
        if problem:
            self.add(problem, key=key, line=line)
            return False
        return True

    def values(self, value: Any, key: str, line: int | None) -> None:
        """Every text inside a var's value (lists and tables of them too), and the names."""
        if isinstance(value, str):
            self.text(value, key, line)
        elif isinstance(value, list):
            for i, v in enumerate(value):
                self.values(v, f"{key}[{i}]", line)
        elif isinstance(value, dict):
            for k, v in value.items():
                if self.text(k, f"{key}.{shown_name(k)}", line):
                    self.values(v, f"{key}.{k}", line)

    def line_of(self, pattern: str, start: int = 0) -> int | None:
        rx = re.compile(pattern)
        for i, text in enumerate(self.lines[start:], start=start + 1):
            if rx.search(text):
                return i
        return None

    def unknown(self, given: dict[str, Any], allowed: set[str], where: str,
                line: int | None = None) -> None:
        for k in sorted(set(given) - allowed):
            near = difflib.get_close_matches(k, sorted(allowed), n=1) if len(k) < 100 else []
            hint = f"did you mean `{near[0]}`?" if near else f"allowed: {', '.join(sorted(allowed))}"
            name = shown_name(k)
            self.add(f"unknown key `{name}`; {hint}", key=f"{where}.{name}" if where else name,
                     line=self.line_of(rf"^\s*{re.escape(k)}\s*=", (line or 1) - 1) or line)


def shown(value: Any) -> str:
    """A value as a message quotes it: its repr (control characters escaped), cut to fit
    one line."""
    text = repr(value)
    return text if len(text) <= 80 else f"{text[:60]}… ({len(text):,} characters)"


def shown_name(name: str) -> str:
    """A key as a message shows it: as written if it is plain, else quoted by `shown`."""
    return name if len(name) <= 80 and name.isprintable() else shown(name)


def load_campaign(folder: Path | str, *, now: datetime | None = None) -> Campaign:
    """Read and check `folder/campaign.toml`. With `now`, a deadline not after `now` is
    an error (planning a campaign that is over); without it that check is skipped."""
    folder = Path(folder)
    path = folder / CAMPAIGN_FILE
    named = str(folder) if len(str(folder)) <= 200 else shown(str(folder))
    try:
        is_dir, is_file = folder.is_dir(), path.is_file()
    except OSError as e:   # a name too long for the OS, a folder we may not read
        raise CampaignErrors([CampaignError(f"cannot be opened ({e.strerror})",
                                            file=named)]) from None
    if not is_dir:
        raise CampaignErrors([CampaignError("no such campaign folder", file=named)])
    if not is_file:
        raise CampaignErrors([CampaignError(f"missing; a campaign folder holds {CAMPAIGN_FILE}",
                                            file=str(path))])
    shown_file = str(path)
    try:
        raw_text = read_text(path, limit=limits.MAX_CAMPAIGN_FILE_BYTES)
        data = load_toml(raw_text)
    except FileProblem as e:
        raise CampaignErrors([CampaignError(str(e), file=shown_file, line=e.line)]) from None
    c = _Collector(shown_file, raw_text)
    c.unknown(data, _TOP_KEYS, "")
    head = data.get("campaign")
    if not isinstance(head, dict):
        c.add("a [campaign] table with slug, title, deadline and timezone is required",
              key="campaign")
        raise CampaignErrors(c.errors)
    campaign_line = c.line_of(r"^\s*\[campaign\]")
    c.unknown(head, _CAMPAIGN_KEYS, "campaign", campaign_line)

    slug = head.get("slug")
    if not isinstance(slug, str) or not _SLUG.fullmatch(slug):
        c.add("write a short lowercase name: letters, digits, - or _ (e.g. \"potuspardon\")",
              key="campaign.slug", line=c.line_of(r"^\s*slug\s*="))
        slug = "?"
    title = head.get("title", slug)
    title_line = c.line_of(r"^\s*title\s*=")
    if not isinstance(title, str) or not title.strip():
        c.add("write the campaign's title as text, e.g. title = \"Keep the Owl buses\"",
              key="campaign.title", line=title_line)
        title = str(slug)
    elif not c.text(title, "campaign.title", title_line):
        title = str(slug)
    tz = _timezone(head.get("timezone"), c)
    deadline = _deadline(head.get("deadline"), tz, now, c)
    hashtags = _hashtags(head.get("hashtags", []), c)
    default_expires = _expires(head.get("expires"), "campaign.expires", DEFAULT_EXPIRES, c, None)

    vars_ = data.get("vars", {})
    if not isinstance(vars_, dict):
        c.add("must be a table of values, e.g. [vars] call_line = \"202-456-1111\"", key="vars")
        vars_ = {}
    c.values(vars_, "vars", c.line_of(r"^\s*\[vars\]"))

    accounts = _accounts(data.get("accounts"), c)
    posts = _posts(data.get("posts"), accounts, default_expires, folder, c)
    toolkit, toolkit_errors = parse_toolkit(data.get("toolkit"), file=shown_file, text=raw_text,
                                            folder=folder, campaign_hashtags=tuple(hashtags))
    c.errors.extend(toolkit_errors)
    if c.errors:
        raise CampaignErrors(c.errors)
    assert deadline is not None and tz is not None
    return Campaign(slug=str(slug), title=title, deadline=deadline, timezone=tz,
                    hashtags=tuple(hashtags), vars=dict(vars_), accounts=accounts,
                    posts=tuple(posts), folder=folder, toolkit=toolkit,
                    warnings=tuple(c.warnings))


def _timezone(value: Any, c: _Collector) -> ZoneInfo | None:
    line = c.line_of(r"^\s*timezone\s*=")
    if not isinstance(value, str):
        c.add("required: an IANA zone name like \"America/New_York\"", key="campaign.timezone",
              line=line)
        return None
    # ZoneInfo also opens what is not a zone: "America" is a folder of the zone
    # database (IsADirectoryError), a 5,000-character name is too long for the OS.
    if value in _zone_names():
        with contextlib.suppress(ZoneInfoNotFoundError, ValueError, OSError):
            return ZoneInfo(value)
    inner = sorted(z for z in _zone_names() if z.startswith(f"{value}/"))
    near = difflib.get_close_matches(value, sorted(_zone_names()), n=1) if len(value) < 64 else []
    if inner:   # "America": a region, not a zone
        example = f"{value}/New_York" if f"{value}/New_York" in inner else inner[0]
        hint = f"; that is a region: name a zone in it, like \"{example}\""
    elif near:
        hint = f"; did you mean \"{near[0]}\"?"
    else:
        hint = "; use an IANA name like \"America/New_York\" or \"Europe/Madrid\""
    c.add(f"unknown timezone {shown(value)}{hint}", key="campaign.timezone", line=line)
    return None


@functools.cache
def _zone_names() -> frozenset[str]:
    import zoneinfo
    return frozenset(zoneinfo.available_timezones() | {"UTC"})


def _deadline(value: Any, tz: ZoneInfo | None, now: datetime | None,
              c: _Collector) -> datetime | None:
    line = c.line_of(r"^\s*deadline\s*=")
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            value = datetime.fromisoformat(str(value))
    if not isinstance(value, datetime):
        c.add("required: a date-time with its UTC offset, e.g. deadline = 2017-01-20T12:00:00-05:00",
              key="campaign.deadline", line=line)
        return None
    if not limits.MIN_YEAR <= value.year <= limits.MAX_YEAR:
        c.add(f"the year {value.year} is out of range; a deadline is between {limits.MIN_YEAR} "
              f"and {limits.MAX_YEAR}, e.g. deadline = 2027-03-15T23:59:00-04:00",
              key="campaign.deadline", line=line)
        return None
    if value.tzinfo is None:
        if tz is None:
            return None
        value = value.replace(tzinfo=tz)
    elif tz is not None:
        _offset_check(value, tz, c, line)
    deadline: datetime = value.astimezone(UTC)
    if now is not None and deadline <= now:
        local = deadline.astimezone(tz or UTC)
        c.add(f"{local:%Y-%m-%d %H:%M %Z} is in the past; a campaign can only be planned "
              "before its deadline (use `tminus rehearse` to replay an old one)",
              key="campaign.deadline", line=line)
    return deadline


def _offset_check(value: datetime, tz: ZoneInfo, c: _Collector, line: int | None) -> None:
    """A deadline written with an offset the campaign's timezone does not have at that
    instant (-05:00 in Chicago's winter) is most likely a typo for the local time."""
    given, actual = value.utcoffset(), value.astimezone(tz).utcoffset()
    if given is None or actual is None or given == actual:
        return
    local = value.astimezone(tz)
    meant = value.replace(tzinfo=None).replace(tzinfo=tz)
    c.warn(f"the offset {_offset(given)} is not {tz.key}'s at that instant ({_offset(actual)}, "
           f"{local:%Z}): the deadline is {local:%Y-%m-%d %H:%M %Z}. If you meant "
           f"{value:%H:%M} there, write {meant.isoformat()} (or leave the offset out)",
           key="campaign.deadline", line=line)


def _offset(delta: timedelta) -> str:
    minutes = int(delta.total_seconds()) // 60
    sign = "-" if minutes < 0 else "+"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def _hashtags(value: Any, c: _Collector) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(h, str) for h in value):
        c.add("must be a list of strings like [\"#POTUSpardon\"]", key="campaign.hashtags")
        return []
    out = []
    for h in value:
        if not re.fullmatch(r"#\w{1,139}", h):
            c.add(f"{shown(h)} is not a hashtag; write it with # and no spaces, e.g. \"#HereToStay\"",
                  key="campaign.hashtags", line=c.line_of(r"^\s*hashtags\s*="))
        out.append(h)
    return out


# Every two-letter tag langcodes calls valid: ISO 639-1's languages, as the IANA
# Language Subtag Registry that langcodes ships has them (deprecated ones like "iw"
# included, as langcodes takes them; the registry is IANA's public data, published at
# https://www.iana.org/assignments/language-subtag-registry). Most campaigns write
# their languages this way, and loading langcodes compiles one pattern over every
# subtag there is, a tenth of a rehearsal's CPU: these are answered without it.
# tests/test_campaign_files.py checks that this set and langcodes agree on every tag
# from "aa" to "zz".
TWO_LETTER_LANGUAGES = frozenset({
    "aa", "ab", "ae", "af", "ak", "am", "an", "ar", "as", "av", "ay", "az", "ba", "be",
    "bg", "bh", "bi", "bm", "bn", "bo", "br", "bs", "ca", "ce", "ch", "co", "cr", "cs",
    "cu", "cv", "cy", "da", "de", "dv", "dz", "ee", "el", "en", "eo", "es", "et", "eu",
    "fa", "ff", "fi", "fj", "fo", "fr", "fy", "ga", "gd", "gl", "gn", "gu", "gv", "ha",
    "he", "hi", "ho", "hr", "ht", "hu", "hy", "hz", "ia", "id", "ie", "ig", "ii", "ik",
    "in", "io", "is", "it", "iu", "iw", "ja", "ji", "jv", "jw", "ka", "kg", "ki", "kj",
    "kk", "kl", "km", "kn", "ko", "kr", "ks", "ku", "kv", "kw", "ky", "la", "lb", "lg",
    "li", "ln", "lo", "lt", "lu", "lv", "mg", "mh", "mi", "mk", "ml", "mn", "mo", "mr",
    "ms", "mt", "my", "na", "nb", "nd", "ne", "ng", "nl", "nn", "no", "nr", "nv", "ny",
    "oc", "oj", "om", "or", "os", "pa", "pi", "pl", "ps", "pt", "qu", "rm", "rn", "ro",
    "ru", "rw", "sa", "sc", "sd", "se", "sg", "sh", "si", "sk", "sl", "sm", "sn", "so",
    "sq", "sr", "ss", "st", "su", "sv", "sw", "ta", "te", "tg", "th", "ti", "tk", "tl",
    "tn", "to", "tr", "ts", "tt", "tw", "ty", "ug", "uk", "ur", "uz", "ve", "vi", "vo",
    "wa", "wo", "xh", "yi", "yo", "za", "zh", "zu"
})


def _language(value: Any, key: str, c: _Collector, line: int | None) -> str | None:
    """A BCP 47 language tag ("en", "es", "pt-BR"), checked with `langcodes` against the
    IANA subtag registry it ships: what Bluesky takes, and Mastodon's ISO 639 codes."""
    if value is None:
        return None
    ok = isinstance(value, str) and value in TWO_LETTER_LANGUAGES
    if not ok and isinstance(value, str) and len(value) <= 35:
        import langcodes
        with contextlib.suppress(Exception):   # it raises on tags it cannot even parse
            ok = bool(langcodes.tag_is_valid(value))
    if not ok:
        c.add(f"{shown(value)} is not a language tag; write a code like \"en\", \"es\" or "
              "\"pt-BR\"", key=key, line=line)
        return None
    return str(value)


def _expires(value: Any, key: str, default: timedelta, c: _Collector,
             line: int | None) -> timedelta:
    if value is None:
        return default
    try:
        return parse_duration(value)
    except ScheduleError as e:
        c.add(str(e), key=key, line=line)
        return default


def _accounts(value: Any, c: _Collector) -> dict[str, AccountSpec]:
    if not isinstance(value, dict) or not value:
        c.add("at least one account is required, e.g. [accounts.org_x] platform = \"x\" "
              "credentials = \"ORG_X\"", key="accounts")
        return {}
    out: dict[str, AccountSpec] = {}
    for name, spec in value.items():
        where = f"accounts.{shown_name(name)}"
        line = c.line_of(rf"^\s*\[accounts\.{re.escape(name)}\]")
        if not _NAME.fullmatch(name):
            c.add("account names are letters, digits, - and _ (at most 63)", key=where, line=line)
            continue
        if not isinstance(spec, dict):
            c.add("must be a table with platform and credentials", key=where, line=line)
            continue
        c.unknown(spec, _ACCOUNT_KEYS, where, line)
        platform = spec.get("platform")
        if not isinstance(platform, str) or platform not in PLATFORMS:
            c.add(f"platform must be one of {', '.join(PLATFORMS)}", key=f"{where}.platform",
                  line=line)
            continue
        known = PLATFORMS[platform]
        needs_credentials = bool(known.credentials.variables())   # the dry run needs none
        creds = spec.get("credentials", None if needs_credentials else "")
        if needs_credentials and (not isinstance(creds, str) or not _PREFIX.fullmatch(creds)):
            c.add("credentials must be an upper-case env prefix like \"ORG_X\" "
                  "(tminus then reads TMINUS_ORG_X_* from the environment or .env)",
                  key=f"{where}.credentials", line=line)
            continue
        tier = spec.get("tier", known.default_tier)
        if tier not in known.tier_names:
            c.add(f"tier must be one of {', '.join(known.tier_names)}", key=f"{where}.tier",
                  line=line)
        budget = None
        if "budget" in spec:
            budget = _budget(spec["budget"], f"{where}.budget", c, line)
        vis = spec.get("visibility")
        if vis is not None and vis not in VISIBILITIES:
            c.add(f"visibility must be one of {', '.join(VISIBILITIES)}",
                  key=f"{where}.visibility", line=line)
        language = _language(spec.get("language"), f"{where}.language", c, line)
        out[name] = AccountSpec(name=name, platform=platform, credentials=str(creds or ""),
                                tier=str(tier), budget=budget, language=language,
                                visibility=vis)
    return out


def _budget(value: Any, key: str, c: _Collector, line: int | None) -> BudgetSpec | None:
    if not isinstance(value, dict):
        c.add("write the budget as { posts = 50, per = \"24h\" }", key=key, line=line)
        return None
    c.unknown(value, _BUDGET_KEYS, key, line)
    posts = value.get("posts")
    if not isinstance(posts, int) or isinstance(posts, bool) or posts < 1:
        c.add("posts must be a whole number ≥ 1", key=f"{key}.posts", line=line)
        return None
    try:
        per = parse_duration(value.get("per", ""))
    except ScheduleError as e:
        c.add(str(e), key=f"{key}.per", line=line)
        return None
    return BudgetSpec(posts=posts, per=per)


def _posts(value: Any, accounts: dict[str, AccountSpec], default_expires: timedelta,
           folder: Path, c: _Collector) -> list[PostSpec]:
    if value is None:
        return []
    if not isinstance(value, list):
        c.add("write posts as [[posts]] tables", key="posts")
        return []
    out: list[PostSpec] = []
    seen: set[str] = set()
    search_from = 0
    for i, spec in enumerate(value):
        line = c.line_of(r"^\s*\[\[posts\]\]", search_from)
        search_from = line or search_from
        if not isinstance(spec, dict):
            c.add("must be a table", key=f"posts[{i}]", line=line)
            continue
        key = spec.get("key")
        where = f"posts.{key}" if isinstance(key, str) and _NAME.fullmatch(key) else f"posts[{i}]"
        c.unknown(spec, _POST_KEYS, where, line)
        if not isinstance(key, str) or not _NAME.fullmatch(key):
            c.add("every post needs a stable key: letters, digits, - and _ (e.g. \"daily-countdown\")",
                  key=f"{where}.key", line=line)
            continue
        if key in seen:
            c.add("this key is used twice; keys must be unique", key=f"{where}.key", line=line)
        seen.add(key)
        template, text = spec.get("template"), spec.get("text")
        if (template is None) == (text is None):
            c.add("give exactly one of `template` (a file in the campaign folder) or `text`",
                  key=where, line=line)
        if template is not None:
            try:
                inside(folder, template, what="template file")
            except PathProblem as e:
                c.add(str(e), key=f"{where}.template", line=line)
        if text is not None and (not isinstance(text, str) or not text.strip()):
            c.add("text must be a non-empty string", key=f"{where}.text", line=line)
        elif isinstance(text, str):
            c.text(text, f"{where}.text", line)
        names = spec.get("accounts")
        if isinstance(names, str):
            names = [names]
        if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
            c.add("list the names of the accounts that send it, e.g. accounts = [\"org_x\"]",
                  key=f"{where}.accounts", line=line)
            names = []
        for n in names:
            if n not in accounts:
                near = difflib.get_close_matches(str(n), sorted(accounts), n=1)
                hint = (f"did you mean {near[0]!r}?" if near
                        else f"declared: {', '.join(sorted(accounts)) or 'none'}")
                c.add(f"unknown account {shown(n)}; {hint}", key=f"{where}.accounts", line=line)
        if "schedule" not in spec:
            c.add("when does it go out? e.g. schedule = { at = \"T-3h\" }",
                  key=f"{where}.schedule", line=line)
        pvars = spec.get("vars", {})
        if not isinstance(pvars, dict):
            c.add("must be a table of values", key=f"{where}.vars", line=line)
            pvars = {}
        c.values(pvars, f"{where}.vars", line)
        warning = spec.get("content_warning")
        if warning is not None and (not isinstance(warning, str) or not warning.strip()):
            c.add("write the content warning as text, e.g. content_warning = \"politics\"",
                  key=f"{where}.content_warning", line=line)
            warning = None
        elif warning is not None and not c.text(warning, f"{where}.content_warning", line):
            warning = None
        vis = spec.get("visibility")
        if vis is not None and vis not in VISIBILITIES:
            c.add(f"visibility must be one of {', '.join(VISIBILITIES)}",
                  key=f"{where}.visibility", line=line)
        media = _media(spec.get("media", []), f"{where}.media", folder, c, line)
        thread = spec.get("thread", [])
        if not isinstance(thread, list) or not all(isinstance(t, str) and t.strip() for t in thread):
            c.add("write a thread as a list of texts, each a reply to the one before: "
                  "thread = [\"second post\", \"third post\"]", key=f"{where}.thread", line=line)
            thread = []
        for n, part in enumerate(thread):
            c.text(part, f"{where}.thread[{n}]", line)
        out.append(PostSpec(
            key=key, accounts=tuple(str(n) for n in names), schedule=spec.get("schedule"),
            template=template if isinstance(template, str) else None,
            text=text if isinstance(text, str) else None,
            expires=_expires(spec.get("expires"), f"{where}.expires", default_expires, c, line),
            vars=dict(pvars), language=_language(spec.get("language"), f"{where}.language", c, line),
            visibility=vis, content_warning=warning, media=media,
            thread=tuple(thread), line=line))
    return out


def _media(value: Any, key: str, folder: Path, c: _Collector,
           line: int | None) -> tuple[MediaSpec, ...]:
    if not isinstance(value, list):
        c.add("write media as [{ path = \"poster.png\", alt = \"what the image shows\" }]",
              key=key, line=line)
        return ()
    out = []
    for item in value:
        if not isinstance(item, dict) or not isinstance(item.get("path"), str):
            c.add("each image needs a path", key=key, line=line)
            continue
        c.unknown(item, _MEDIA_KEYS, key, line)
        alt = item.get("alt")
        if not isinstance(alt, str) or not alt.strip():
            c.add(f"image {shown(item['path'])} needs alt text (alt = \"...\") for people using "
                  "screen readers", key=key, line=line)
            continue
        if not c.text(alt, f"{key}.alt", line):
            continue
        try:
            inside(folder, item["path"], what="image")
        except PathProblem as e:
            c.add(str(e), key=key, line=line)
            continue
        out.append(MediaSpec(path=str(folder / item["path"]), alt=alt))
    return tuple(out)
