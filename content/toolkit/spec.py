"""The `[toolkit]` section of a campaign file: what supporters are given.

`parse_toolkit` checks the raw table the way `content.campaign` checks the rest of the
file and returns a `Toolkit` (or None when there is no section) with every problem as a
`CampaignError(file, key, line)`. Texts are only named here; `content.toolkit.texts`
renders them.

Texts that supporters send (suggested posts, call scripts, the letter and its subject)
are templates with the same rules as posts. Page wording the campaign sets (title,
intro, labels, the closed message) is plain text. Either may be one string for every
language or a table with one entry per language: `intro = { en = "…", es = "…" }`.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from content.errors import CampaignError
from content.toolkit.words import LANGUAGES

SHARE_PLATFORMS = ("x", "bluesky", "mastodon")

_KEYS = {"languages", "title", "intro", "closed", "url", "hashtags", "via", "related",
         "platforms", "posts", "calls", "letter"}
_POST_KEYS = {"key", "text", "template", "languages", "vars"}
_CALL_KEYS = {"name", "number", "region", "hours", "script"}
_LETTER_KEYS = {"to", "subject", "text", "template", "blanks"}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$")
_BLANK = re.compile(r"^[a-z][a-z0-9_]{0,30}$")
_HANDLE = re.compile(r"^@?[A-Za-z0-9_]{1,15}$")        # an X user name
_EMAIL = re.compile(r"^[^@\s,;?&]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}$")
_INVISIBLE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\u200b\u200e\u200f\u202a-\u202e\u2066-\u2069\ufeff]")

# A supporter's text is short; a page needs no more. Bounds keep a hostile file cheap.
MAX_TEXT = 5_000
MAX_ITEMS = 50


@dataclass(frozen=True)
class Source:
    """One text to render: a template file in the campaign folder, or inline text."""

    template: str | None = None
    text: str | None = None


@dataclass(frozen=True)
class Suggestion:
    """A suggested post, in one or more languages."""

    key: str
    sources: dict[str, Source]          # language -> what to render
    vars: dict[str, Any] = field(default_factory=dict)
    line: int | None = None


@dataclass(frozen=True)
class CallLine:
    name: dict[str, str]                # language -> label
    number: str                         # as the campaign writes it
    tel: str                            # E.164, for the tel: link
    script: dict[str, Source]
    hours: dict[str, str] | None = None
    line: int | None = None


@dataclass(frozen=True)
class Blank:
    name: str                           # {{ fill.NAME }} in the letter
    label: dict[str, str]


@dataclass(frozen=True)
class Letter:
    body: dict[str, Source]
    subject: dict[str, Source]
    blanks: tuple[Blank, ...]
    to: str | None = None
    line: int | None = None


@dataclass(frozen=True)
class Toolkit:
    languages: tuple[str, ...]          # the first one is the site's index.html
    platforms: tuple[str, ...]
    hashtags: tuple[str, ...]           # added by every share link
    posts: tuple[Suggestion, ...] = ()
    calls: tuple[CallLine, ...] = ()
    letter: Letter | None = None
    title: dict[str, str] | None = None
    intro: dict[str, str] | None = None
    closed: dict[str, str] | None = None
    url: str | None = None
    via: str | None = None
    related: tuple[str, ...] = ()


class _Checker:
    """Collects problems, each with the line of the table it is in."""

    def __init__(self, file: str, text: str, folder: Path) -> None:
        self.file = file
        self.lines = text.splitlines()
        self.folder = folder
        self.errors: list[CampaignError] = []

    def add(self, message: str, key: str, line: int | None) -> None:
        self.errors.append(CampaignError(message, file=self.file, key=key, line=line))

    def header(self, pattern: str, nth: int = 0) -> int | None:
        """The line of the nth table header matching `pattern`."""
        rx = re.compile(rf"^\s*{pattern}\s*(#.*)?$")
        found = [i for i, ln in enumerate(self.lines, start=1) if rx.match(ln)]
        return found[nth] if nth < len(found) else None

    def key_line(self, key: str, start: int | None) -> int | None:
        """The line of `key = ...` in the table starting at `start`."""
        rx = re.compile(rf"^\s*{re.escape(key)}\s*=")
        for i in range(start or 1, len(self.lines) + 1):
            if i > (start or 1) and self.lines[i - 1].lstrip().startswith("["):
                break
            if rx.match(self.lines[i - 1]):
                return i
        return start

    def unknown(self, given: dict[str, Any], allowed: set[str], where: str,
                line: int | None) -> None:
        for k in sorted(set(given) - allowed):
            near = difflib.get_close_matches(k, sorted(allowed), n=1)
            hint = f"did you mean `{near[0]}`?" if near else f"allowed: {', '.join(sorted(allowed))}"
            self.add(f"unknown key `{k}`; {hint}", f"{where}.{k}", self.key_line(k, line))

    def plain(self, value: Any, where: str, line: int | None, languages: tuple[str, ...],
              *, every: bool = True) -> dict[str, str] | None:
        """A page text: one string, or {language: string} covering every language."""
        if value is None:
            return None
        line = self.key_line(where.rsplit(".", 1)[-1], line)
        table = self._per_language(value, where, line, languages, every=every)
        for lang, text in (table or {}).items():
            if not text.strip():
                self.add("must not be empty", f"{where}.{lang}", line)
            elif len(text) > MAX_TEXT or _INVISIBLE.search(text):
                self.add(f"must be visible text under {MAX_TEXT:,} characters (no control or "
                         "direction-override characters)", f"{where}.{lang}", line)
        return table

    def source(self, template: Any, text: Any, where: str, line: int | None,
               languages: tuple[str, ...], *, every: bool,
               text_key: str = "text") -> dict[str, Source] | None:
        """A text to render: `template = FILE` or `text = "..."` (or `text_key`), each
        a string or a table per language."""
        if (template is None) == (text is None):
            self.add("give exactly one of `template` (a file in the campaign folder) or "
                     "`text`", where, line)
            return None
        if template is not None:
            files = self._per_language(template, f"{where}.template",
                                       self.key_line("template", line), languages, every=every)
            if files is None:
                return None
            for name in files.values():
                self._template_file(name, f"{where}.template", line)
            return {lang: Source(template=name) for lang, name in files.items()}
        text_line = self.key_line(text_key, line)
        texts = self._per_language(text, f"{where}.{text_key}", text_line, languages, every=every)
        if texts is None:
            return None
        if any(not t.strip() or len(t) > MAX_TEXT for t in texts.values()):
            self.add(f"must be a non-empty text under {MAX_TEXT:,} characters",
                     f"{where}.{text_key}", text_line)
            return None
        return {lang: Source(text=t) for lang, t in texts.items()}

    def _per_language(self, value: Any, where: str, line: int | None,
                      languages: tuple[str, ...], *, every: bool) -> dict[str, str] | None:
        if isinstance(value, str):
            return dict.fromkeys(languages, value)
        if not isinstance(value, dict) or not value or not all(
                isinstance(v, str) for v in value.values()):
            self.add(f"write a string, or one per language: {{ {languages[0]} = \"…\" }}",
                     where, line)
            return None
        strange = sorted(set(value) - set(languages))
        if strange:
            self.add(f"language {strange[0]!r} is not in toolkit.languages "
                     f"({', '.join(languages)})", where, line)
            return None
        missing = [lang for lang in languages if lang not in value]
        if every and missing:
            self.add(f"missing the {missing[0]!r} text (the page is built in "
                     f"{', '.join(languages)})", where, line)
            return None
        return {lang: value[lang] for lang in languages if lang in value}

    def _template_file(self, name: str, where: str, line: int | None) -> None:
        line = self.key_line("template", line)
        path = self.folder / name
        try:
            inside = path.resolve().is_relative_to(self.folder.resolve())
        except (OSError, ValueError):
            inside = False
        if len(name) > 255 or not inside or Path(name).is_absolute():
            self.add(f"template {name[:80]!r} must be a file inside the campaign folder",
                     where, line)
        elif not path.is_file():
            self.add(f"template file {name!r} not found in {self.folder}", where, line)


def parse_toolkit(raw: Any, *, file: str, text: str, folder: Path,
                  campaign_hashtags: tuple[str, ...]) -> tuple[Toolkit | None, list[CampaignError]]:
    """Check the raw `[toolkit]` table; `text` is the file's text, for line numbers."""
    c = _Checker(file, text, folder)
    if raw is None:
        return None, []
    top = c.header(r"\[toolkit\]")
    if not isinstance(raw, dict):
        c.add("write the toolkit as a [toolkit] table", "toolkit", top)
        return None, c.errors
    c.unknown(raw, _KEYS, "toolkit", top)
    languages = _languages(raw.get("languages", ["en"]), c, top)
    platforms = _platforms(raw.get("platforms", list(SHARE_PLATFORMS)), c, top)
    hashtags = _hashtags(raw.get("hashtags", list(campaign_hashtags)), c, top)
    url = _url(raw.get("url"), c, top)
    via = _handle(raw.get("via"), "toolkit.via", c, top)
    related = raw.get("related", [])
    if isinstance(related, str):
        related = [related]
    if not isinstance(related, list) or len(related) > 10:
        c.add("write up to 10 X accounts: related = [\"POTUS\"]", "toolkit.related",
              c.key_line("related", top))
        related = []
    related_names = [r for r in (_handle(x, "toolkit.related", c, top) for x in related) if r]
    kit = Toolkit(
        languages=languages, platforms=platforms, hashtags=hashtags, url=url, via=via,
        related=tuple(related_names),
        title=c.plain(raw.get("title"), "toolkit.title", top, languages),
        intro=c.plain(raw.get("intro"), "toolkit.intro", top, languages),
        closed=c.plain(raw.get("closed"), "toolkit.closed", top, languages),
        posts=tuple(_posts(raw.get("posts", []), c, languages)),
        calls=tuple(_calls(raw.get("calls", []), c, languages)),
        letter=_letter(raw.get("letter"), c, languages))
    if not (kit.posts or kit.calls or kit.letter) and not c.errors:
        c.add("a toolkit needs at least one of [[toolkit.posts]], [[toolkit.calls]] or "
              "[toolkit.letter]", "toolkit", top)
    return (None if c.errors else kit), c.errors


def _languages(value: Any, c: _Checker, top: int | None) -> tuple[str, ...]:
    line = c.key_line("languages", top)
    if (not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value)
            or len(set(value)) != len(value)):
        c.add("list the page's languages, the first one the main page: languages = [\"en\", \"es\"]",
              "toolkit.languages", line)
        return ("en",)
    unknown = [v for v in value if v not in LANGUAGES]
    if unknown:
        c.add(f"no page wording for {unknown[0]!r} yet; the toolkit page can be built in "
              f"{', '.join(LANGUAGES)}", "toolkit.languages", line)
        return tuple(v for v in value if v in LANGUAGES) or ("en",)
    return tuple(value)


def _platforms(value: Any, c: _Checker, top: int | None) -> tuple[str, ...]:
    if (not isinstance(value, list) or not value
            or not all(isinstance(v, str) and v in SHARE_PLATFORMS for v in value)):
        c.add(f"list where supporters share, from {', '.join(SHARE_PLATFORMS)}",
              "toolkit.platforms", c.key_line("platforms", top))
        return SHARE_PLATFORMS
    return tuple(dict.fromkeys(value))


def _hashtags(value: Any, c: _Checker, top: int | None) -> tuple[str, ...]:
    line = c.key_line("hashtags", top)
    if not isinstance(value, list) or not all(isinstance(h, str) for h in value) or len(value) > 10:
        c.add("write up to 10 hashtags like [\"#POTUSpardon\"] ([] for none)", "toolkit.hashtags",
              line)
        return ()
    for h in value:
        if not re.fullmatch(r"#\w{1,100}", h):
            c.add(f"{h[:40]!r} is not a hashtag; write it with # and no spaces, e.g. \"#HereToStay\"",
                  "toolkit.hashtags", line)
    return tuple(value)


def _url(value: Any, c: _Checker, top: int | None) -> str | None:
    if value is None:
        return None
    parts = urlsplit(value) if isinstance(value, str) and len(value) < 2000 else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname \
            or any(ch.isspace() for ch in value):
        c.add("the page supporters share: a full link like \"https://example.org/pardon\"",
              "toolkit.url", c.key_line("url", top))
        return None
    return str(value)


def _handle(value: Any, key: str, c: _Checker, top: int | None) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not _HANDLE.match(value):
        c.add(f"{str(value)[:40]!r} is not an X account; write its name, e.g. \"POTUS\"",
              key, c.key_line(key.rsplit(".", 1)[-1], top))
        return None
    return value.removeprefix("@")


def _table_list(value: Any, where: str, header: str, c: _Checker) -> list[tuple[dict[str, Any], int | None]]:
    if not isinstance(value, list):
        c.add(f"write these as [[{where}]] tables", where, c.header(r"\[toolkit\]"))
        return []
    if len(value) > MAX_ITEMS:
        c.add(f"at most {MAX_ITEMS} of these", where, c.header(header))
        return []
    out = []
    for i, item in enumerate(value):
        line = c.header(header, i)
        if not isinstance(item, dict):
            c.add("must be a table", f"{where}[{i}]", line)
            continue
        out.append((item, line))
    return out


def _posts(value: Any, c: _Checker, languages: tuple[str, ...]) -> list[Suggestion]:
    out: list[Suggestion] = []
    seen: set[str] = set()
    for i, (spec, line) in enumerate(_table_list(value, "toolkit.posts", r"\[\[toolkit\.posts\]\]", c)):
        key = spec.get("key")
        where = f"toolkit.posts.{key}" if isinstance(key, str) and _NAME.match(key) else f"toolkit.posts[{i}]"
        c.unknown(spec, _POST_KEYS, where, line)
        if not isinstance(key, str) or not _NAME.match(key):
            c.add("every suggested post needs a key: letters, digits, - and _ (e.g. \"ask-potus\")",
                  f"{where}.key", line)
            continue
        if key in seen:
            c.add("this key is used twice; keys must be unique", f"{where}.key", line)
        seen.add(key)
        langs = _post_languages(spec, where, line, c, languages)
        sources = c.source(spec.get("template"), spec.get("text"), where, line, langs,
                           every=False)
        pvars = spec.get("vars", {})
        if not isinstance(pvars, dict):
            c.add("must be a table of values", f"{where}.vars", c.key_line("vars", line))
            pvars = {}
        if sources:
            out.append(Suggestion(key=key, sources=sources, vars=dict(pvars), line=line))
    return out


def _post_languages(spec: dict[str, Any], where: str, line: int | None, c: _Checker,
                    languages: tuple[str, ...]) -> tuple[str, ...]:
    """A post in one string is in the first language unless `languages` says more (the
    template then switches on `language`); a table per language says it itself."""
    given = spec.get("languages")
    if given is None:
        if isinstance(spec.get("text"), dict) or isinstance(spec.get("template"), dict):
            return languages
        return languages[:1]
    if not isinstance(given, list) or not given or not all(g in languages for g in given):
        c.add(f"list languages of this toolkit ({', '.join(languages)})", f"{where}.languages",
              c.key_line("languages", line))
        return languages[:1]
    return tuple(g for g in languages if g in given)


def _calls(value: Any, c: _Checker, languages: tuple[str, ...]) -> list[CallLine]:
    out: list[CallLine] = []
    for i, (spec, line) in enumerate(_table_list(value, "toolkit.calls", r"\[\[toolkit\.calls\]\]", c)):
        where = f"toolkit.calls[{i}]"
        c.unknown(spec, _CALL_KEYS, where, line)
        name = c.plain(spec.get("name"), f"{where}.name", line, languages)
        if name is None:
            c.add("name the line, e.g. name = \"White House comment line\"", f"{where}.name", line)
        tel = _phone(spec.get("number"), spec.get("region"), where, line, c)
        script = c.source(None, spec.get("script"), where, line, languages, every=True,
                          text_key="script") if spec.get("script") is not None else None
        if spec.get("script") is None:
            c.add("give the caller a short script: script = \"Hi, my name is … and I'm calling to ask …\"",
                  f"{where}.script", line)
        hours = c.plain(spec.get("hours"), f"{where}.hours", line, languages)
        if name and tel and script:
            out.append(CallLine(name=name, number=str(spec["number"]), tel=tel, script=script,
                                hours=hours, line=line))
    return out


def _phone(number: Any, region: Any, where: str, line: int | None, c: _Checker) -> str | None:
    # imported here, not at the top: every campaign load would pay for it
    import phonenumbers
    key_line = c.key_line("number", line)
    if not isinstance(number, str) or not number.strip() or len(number) > 40:
        c.add("the number to call, as people dial it: number = \"+1 202-456-1111\"",
              f"{where}.number", key_line)
        return None
    if region is not None and (not isinstance(region, str) or not re.fullmatch(r"[A-Z]{2}", region)):
        c.add("a two-letter country code like \"US\"", f"{where}.region", c.key_line("region", line))
        return None
    if not number.strip().startswith("+") and region is None:
        c.add(f"{number!r} has no country code; write it as \"+1 {number}\" or add region = \"US\" "
              "(the country it is dialed in)", f"{where}.number", key_line)
        return None
    try:
        parsed = phonenumbers.parse(number, region)
    except phonenumbers.NumberParseException:
        parsed = None
    if parsed is None or not phonenumbers.is_possible_number(parsed):
        c.add(f"{number!r} is not a phone number tminus can dial; check the digits",
              f"{where}.number", key_line)
        return None
    return str(phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164))


def _letter(value: Any, c: _Checker, languages: tuple[str, ...]) -> Letter | None:
    if value is None:
        return None
    line = c.header(r"\[toolkit\.letter\]")
    if not isinstance(value, dict):
        c.add("write the letter as a [toolkit.letter] table", "toolkit.letter", line)
        return None
    c.unknown(value, _LETTER_KEYS, "toolkit.letter", line)
    to = value.get("to")
    if to is not None and (not isinstance(to, str) or not _EMAIL.match(to)):
        c.add("the address the letter goes to, like \"board@example.org\" (or leave it out)",
              "toolkit.letter.to", c.key_line("to", line))
        to = None
    body = c.source(value.get("template"), value.get("text"), "toolkit.letter", line,
                    languages, every=True)
    subject_value = value.get("subject")
    subject = None
    if subject_value is None:
        c.add("give the e-mail a subject: subject = \"Keep the Owl buses\"",
              "toolkit.letter.subject", line)
    else:
        subject = c.source(None, subject_value, "toolkit.letter", line, languages, every=True,
                           text_key="subject")
    blanks = _blanks(value.get("blanks", {}), c, languages)
    if body is None or subject is None:
        return None
    return Letter(body=body, subject=subject, blanks=tuple(blanks), to=to, line=line)


def _blanks(value: Any, c: _Checker, languages: tuple[str, ...]) -> list[Blank]:
    line = c.header(r"\[toolkit\.letter\.blanks\]") or c.header(r"\[toolkit\.letter\]")
    if not isinstance(value, dict) or len(value) > 20:
        c.add("name each blank and its label: [toolkit.letter.blanks] name = \"Your name\"",
              "toolkit.letter.blanks", line)
        return []
    out = []
    for name, label in value.items():
        where = f"toolkit.letter.blanks.{name}"
        if not _BLANK.match(name):
            c.add("a blank's name is lowercase letters, digits and _ (used as {{ fill.NAME }})",
                  where, c.key_line(name, line))
            continue
        labels = c.plain(label, where, line, languages)
        if labels is not None:
            out.append(Blank(name=name, label=labels))
    return out
