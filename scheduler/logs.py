"""Logging for the daemon and the demo: one line per record on stderr, and never a
credential or a session token in it, at any level.

Two layers, because either alone could miss something:

- The HTTP and SDK libraries stay at WARNING even at `TMINUS_LOG_LEVEL=DEBUG`: their
  debug output is request dumps, and oauthlib / requests_oauthlib / tweepy write the X
  consumer key, access token and signed `Authorization` headers into it. tminus's own
  loggers (`tminus.*`) do follow DEBUG.
- Every formatted line (message, arguments and traceback alike) goes through
  `redact()`: the value of every credential variable in the environment
  (TMINUS_*_KEY, *_SECRET, *_TOKEN, *_PASSWORD, and the password in a database URL),
  also percent-encoded, becomes `[redacted]`, and so does anything shaped like a
  token: JWTs (Bluesky's session tokens), `Bearer ...`, OAuth parameters and
  `Authorization` headers. The Apprise URLs of TMINUS_NOTIFY are credentials too: the
  URL and each part of it that may be a token (`url_secrets`).

`TMINUS_LOG_FORMAT=json` writes one JSON object per line instead (time, level, logger,
message, and `post_id` / `account` where the record carries them, as `extra=`), each
value redacted the same way.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, TextIO
from urllib.parse import parse_qsl, quote, urlsplit

if TYPE_CHECKING:   # the command line imports this module before it needs any setting
    from scheduler.settings import Settings

# Kept at WARNING whatever the level: they log requests with their headers.
QUIET = ("oauthlib", "requests_oauthlib", "tweepy", "urllib3", "requests", "httpx", "httpcore",
         "hpack", "h2", "mastodon", "atproto", "atproto_client", "atproto_core",
         "apscheduler", "alembic", "charset_normalizer", "apprise")

_SECRET_VAR = re.compile(r"^TMINUS_\w*(KEY|SECRET|TOKEN|PASSWORD)$")
_MARK = "[redacted]"
# Each shape with the words (lower case) one of which it cannot match without: a line
# of ASCII holding none of them is left as it is without running the pattern (the
# case-insensitive ones cost tens of µs a line, half of logging a post a burst sends).
_SHAPES = [
    # JWTs: header.payload.signature, each base64url (Bluesky access and refresh tokens)
    (re.compile(r"eyJ[A-Za-z0-9_-]{6,}\.[A-Za-z0-9_-]{6,}\.[A-Za-z0-9_-]*"), _MARK, ("eyj",)),
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{6,}"), rf"\1 {_MARK}",
     ("bearer", "basic")),
    # OAuth 1.0a parameters, in headers (key="value"), queries (key=value) or
    # percent-encoded in a signature base string (key%3Dvalue)
    (re.compile(r"(?i)(?<![a-z_])(oauth_(?:consumer_key|token|signature|nonce|verifier)"
                r"|access_?token|refresh_?(?:token|jwt)|access_?jwt|app_?password|password)"
                r"(\"?\s*(?:=|:|%3D)\s*\"?'?)([^\"'&,\s}%]+)"), rf"\1\2{_MARK}",
     ("oauth_", "token", "jwt", "password")),
    (re.compile(r"(?i)(['\"]?authorization['\"]?\s*[:=]\s*['\"]?)[^'\"\n]+"), rf"\1{_MARK}",
     ("authorization",)),
    # user:password@ in URLs
    (re.compile(r"(://[^:/@\s]+:)[^@\s/]+@"), rf"\1{_MARK}@", ("://",)),
]


def secret_values(settings: Settings) -> list[str]:
    """Every credential value tminus could be given, as it could appear in a log."""
    values = {v.strip() for k, v in settings.env.items() if _SECRET_VAR.match(k) and v.strip()}
    with_password = urlsplit(settings.database_url).password
    if with_password:
        values.add(with_password)
    values.update(url_secrets(settings.notify_urls))
    forms = {form for v in values if len(v) >= 4 for form in (v, quote(v, safe=""))}
    return sorted(forms, key=_longest_first)     # longest first: no half-redacted value


def url_secrets(urls: Iterable[str]) -> set[str]:
    """The parts of Apprise URLs that may be secret: the URL itself, its user and
    password, a host that is no host name (tgram://123:ABC/ keeps its token there), each
    path segment and query value (slack://T/B/XXXX, ntfy topics)."""
    found: set[str] = set()
    for url in urls:
        found.add(url)
        try:
            parts = urlsplit(url)
            found.update(p for p in (parts.username, parts.password) if p)
            host = parts.hostname or ""
        except ValueError:
            continue
        if host and "." not in host and host != "localhost":
            found.add(host)
        found.update(seg for seg in parts.path.split("/") if seg)
        found.update(v for _, v in parse_qsl(parts.query) if v)
    return {f for f in found if len(f) >= 6}


class Secrets:
    """Secret values made ready to redact many lines: indexed by their first few
    characters, so that a line costs one dictionary look-up per character rather than
    one `str.replace` per secret (a thousand accounts give thousands of values, and that
    loop was a tenth of a burst's CPU). Only the values found in a line are replaced, in
    the same order as before: longest first, so none is left half redacted."""

    KEY = 4     # characters a value is indexed by
    FEW = 64    # up to this many, each is looked for on its own (in C: cheaper then)

    def __init__(self, values: Iterable[str]) -> None:
        self.values = sorted({v for v in values if v}, key=_longest_first)
        self._short = [v for v in self.values if len(v) < self.KEY]
        self._by_start: dict[str, list[str]] = {}
        for v in self.values:
            if len(v) >= self.KEY:
                self._by_start.setdefault(v[:self.KEY], []).append(v)

    def found_in(self, text: str) -> list[str]:
        """The values that occur in `text`, longest first."""
        if len(self.values) <= self.FEW:
            return [v for v in self.values if v in text]
        found = {v for v in self._short if v in text}
        by_start, key = self._by_start, self.KEY
        if by_start:
            for i in range(len(text) - key + 1):
                starting = by_start.get(text[i:i + key])
                if starting:
                    found.update(v for v in starting if text.startswith(v, i))
        return sorted(found, key=_longest_first)


def _longest_first(value: str) -> tuple[int, str]:
    return -len(value), value


def redact(text: str, secrets: Iterable[str] | Secrets = ()) -> str:
    for value in secrets.found_in(text) if isinstance(secrets, Secrets) else secrets:
        text = text.replace(value, _MARK)
    # Beyond ASCII every pattern runs: under IGNORECASE a few other letters match ASCII
    # ones (the Kelvin sign K, a long s), which lower() would not show
    lower = text.lower() if text.isascii() else None
    for pattern, replacement, words in _SHAPES:
        if lower is None or any(w in lower for w in words):
            text = pattern.sub(replacement, text)
    return text


class RedactingFormatter(logging.Formatter):
    def __init__(self, fmt: str, secrets: Iterable[str]) -> None:
        super().__init__(fmt)
        self.secrets = Secrets(secrets)

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record), self.secrets)


# Record attributes given as `extra=` that a JSON line carries when present.
JSON_EXTRAS = ("post_id", "account", "campaign", "alert_id")


class JsonFormatter(logging.Formatter):
    """One JSON object per record: what log collectors (journald, Loki, CloudWatch) read
    without a parsing rule. Every string is redacted before it is encoded."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self.secrets = Secrets(secrets)

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname, "logger": record.name,
            "message": redact(record.getMessage(), self.secrets)}
        for key in JSON_EXTRAS:
            value = getattr(record, key, None)
            if value is not None:
                line[key] = redact(value, self.secrets) if isinstance(value, str) else value
        if record.exc_info:
            line["exception"] = redact(self.formatException(record.exc_info), self.secrets)
        return json.dumps(line, ensure_ascii=False, default=str)


class _TminusHandler(logging.StreamHandler[TextIO]):
    """Ours, so configuring again replaces it and leaves other handlers alone."""


def configure(settings: Settings, stream: TextIO | None = None) -> logging.Handler:
    """Send log records to `stream` (stderr) at `settings.log_level`, redacted."""
    level = getattr(logging, settings.log_level)
    handler = _TminusHandler(stream or sys.stderr)
    secrets = secret_values(settings)
    handler.setFormatter(JsonFormatter(secrets) if settings.log_format == "json" else
                         RedactingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s",
                                            secrets))
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _TminusHandler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for name in QUIET:
        logging.getLogger(name).setLevel(max(level, logging.WARNING))
    return handler
