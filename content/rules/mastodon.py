"""Mastodon's length of a status, following what the server itself checks.

Written from Mastodon's own rules (no code of it is used; there is no Mastodon library
to test against, so each rule below has its own test in tests/test_rules.py):

- ``Status#prepare_contents`` strips the text and the content warning (Ruby's
  ``String#strip``: NUL, tab, LF, VT, FF, CR and space) before validating;
  ``validates :text, presence: true`` refuses a text that is then blank (only
  whitespace, Rails' ``blank?``) unless the status carries media.
- ``app/validators/status_length_validator.rb`` counts the grapheme clusters of the
  content warning followed by the text, where in the text (not the warning) each URL
  the formatter would link counts 23 and each ``@user@domain`` mention counts as
  ``@user``; overlapping entities keep the first (twitter-text's
  ``remove_overlapping_entities``).
- URLs are twitter-text's Ruby grammar with Mastodon's overrides
  (``config/initializers/twitter_regex.rb``): only with a scheme
  (``extract_url_without_protocol: false``), and the schemes are http(s), dat, dweb,
  ipfs, ipns, ssb, gopher and gemini; a path takes any character but white space and
  ``<>()?`` (ending on one that is not punctuation, or balanced parentheses); a query
  may hold non-ASCII letters.  The host must pass IDNA 2003 (libidn's ToASCII, as
  twitter-text's ``is_valid_domain`` does) and the URL fit in 4096 characters.
- Mentions are ``Account::MENTION_RE`` (not after a word character, "/" or "="), and
  a mention followed by "@", a Latin accented letter or "://" is no mention
  (twitter-text's ``end_mention_match``); nor is one whose domain is over 253 long.
"""

from __future__ import annotations

import functools
import stringprep

import regex

from content.rules import x_data
from content.rules.graphemes import grapheme_count

__all__ = ["MASTODON_DEFAULT_LIMIT", "MASTODON_URL_LENGTH", "mastodon_is_blank", "mastodon_length"]

MASTODON_DEFAULT_LIMIT = 500  # per instance: configuration.statuses.max_characters
MASTODON_URL_LENGTH = 23  # configuration.statuses.characters_reserved_per_url

_RUBY_STRIP = "\0\t\n\v\f\r "  # String#strip: ASCII white space and NUL only
_BLANK_RE = regex.compile(r"[\p{White_Space}]*")  # ActiveSupport's /\A[[:space:]]*\z/

# ----------------------------------------------------------------------------- URLs

_DIRECTIONAL = "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
_INVALID = "\ufffe\ufeff\uffff"
_UNICODE_SPACES = "\t-\r \x85\xa0\u1680\u180e\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
_DOMAIN_CHAR = (f"[^{_DIRECTIONAL}!\"#$%&'()*+,\\-./:;<=>?@\\[\\]^_`{{|}}~\\x00-\\x1f\\x7f"
                f"{_INVALID}{_UNICODE_SPACES}]")
_SUBDOMAIN = f"(?:(?:{_DOMAIN_CHAR}(?:[_\\-]|{_DOMAIN_CHAR})*)?{_DOMAIN_CHAR}\\.)"
_DOMAIN_NAME = f"(?:(?:{_DOMAIN_CHAR}(?:-|{_DOMAIN_CHAR})*)?{_DOMAIN_CHAR}\\.)"
_TLD_END = "(?=[^0-9a-z@+\\-]|$)"
_TLD = f"(?:\\L<gtld>{_TLD_END}|\\L<cctld>{_TLD_END}|xn--[0-9a-z]+)"
_DOMAIN = f"(?:{_SUBDOMAIN}*{_DOMAIN_NAME}{_TLD})"

# twitter-text's own balanced parentheses, which Mastodon's ending characters embed as
# they stood before Mastodon redefined them.
_LATIN_ACCENTS = ("\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u00ff\u0100-\u024f\u0253\u0254\u0256\u0257"
                  "\u0259\u025b\u0263\u0268\u026f\u0272\u0289\u028b\u02bb\u0300-\u036f\u1e00-\u1eff")
_TT_PATH_CHAR = f"[a-z\\p{{Cyrillic}}0-9!*';:=+,.$/%#\\[\\]\\p{{Pd}}_~&|@{_LATIN_ACCENTS}]"
_TT_PARENS = f"\\((?:{_TT_PATH_CHAR}+|(?:{_TT_PATH_CHAR}*\\({_TT_PATH_CHAR}+\\){_TT_PATH_CHAR}*))\\)"
_PATH_CHAR = "[^\\p{White_Space}<>()?]"
_PARENS = f"\\((?:{_PATH_CHAR}+|(?:{_PATH_CHAR}*\\({_PATH_CHAR}+\\){_PATH_CHAR}*))\\)"
_PATH_END = f"(?:[^\\p{{White_Space}}()?!*\"'「」<>;:=,.$%\\[\\]~&|@]|{_TT_PARENS})"
_PATH = f"(?:(?:{_PATH_CHAR}*(?:{_PARENS}{_PATH_CHAR}*)*{_PATH_END})|(?:{_PATH_CHAR}+/))"
_UCHARS = ("\u00a0-\ud7ff\uf900-\ufdcf\ufdf0-\uffef\U00010000-\U0001fffd\U00020000-\U0002fffd"
           "\U00030000-\U0003fffd\U00040000-\U0004fffd\U00050000-\U0005fffd\U00060000-\U0006fffd"
           "\U00070000-\U0007fffd\U00080000-\U0008fffd\U00090000-\U0009fffd\U000a0000-\U000afffd"
           "\U000b0000-\U000bfffd\U000c0000-\U000cfffd\U000d0000-\U000dfffd\U000e1000-\U000efffd"
           "\ue000-\uf8ff\U000f0000-\U000ffffd\U00100000-\U0010fffd")
_QUERY = f"\\?[a-z0-9!?*'();:&=+$/%#\\[\\]\\-_.,~|@^{_UCHARS}]*[a-z0-9_&=#/\\-{_UCHARS}]"

@functools.cache
def _url_re() -> regex.Pattern[str]:
    # Compiled on first use: the TLD lists make it take a moment.
    return regex.compile(
        f"(?:[^A-Z0-9@\uff20$#\uff03{_INVALID}]|[{_DIRECTIONAL}]|^)"
        "(?P<url>"
        "(?P<protocol>(?:https?|dat|dweb|ipfs|ipns|ssb|gopher|gemini)://)"
        f"(?P<domain>{_DOMAIN})"
        "(?::[0-9]+)?"
        f"(?:/{_PATH}*)?"
        f"(?:{_QUERY})?"
        ")",
        regex.IGNORECASE | regex.MULTILINE,  # Ruby's ^ is a line start
        gtld=x_data.GTLDS, cctld=x_data.CCTLDS,
    )


_TCO_RE = regex.compile("https?://t\\.co/([a-z0-9]+)", regex.IGNORECASE)
_MAX_URL_LENGTH = 4096
_MAX_TCO_SLUG = 40


def _idna_length(domain: str) -> int | None:
    """Length of libidn's IDNA 2003 ToASCII of ``domain``, or None where it fails.
    Python's codec is the same algorithm but lets code points unassigned in Unicode
    3.2 through, which libidn (without IDNA_ALLOW_UNASSIGNED) refuses."""
    if any(stringprep.in_table_a1(char) for char in domain):
        return None
    try:
        return len(domain.encode("idna"))
    except UnicodeError:
        return None


def _url_spans(text: str) -> list[tuple[int, int]]:
    if "://" not in text:   # every match has its scheme's "://": most texts skip the compile
        return []
    spans = []
    for match in _url_re().finditer(text):
        start, end = match.span("url")
        url, domain = match.group("url"), match.group("domain")
        tco = _TCO_RE.match(url)
        if tco is not None:
            if len(tco.group(1)) > _MAX_TCO_SLUG:
                continue
            url = tco.group(0)
            end = start + len(url)
        encoded = _idna_length(domain)
        if encoded is None or len(url) + max(0, encoded - len(domain)) > _MAX_URL_LENGTH:
            continue
        spans.append((start, end))
    return spans



# ------------------------------------------------------------------------- mentions

_MENTION_RE = regex.compile(
    r"(?<![=/\p{L}\p{M}\p{Nd}\p{Pc}])@(?P<name>(?P<user>(?i:[a-z0-9_]+(?:[.\-]+[a-z0-9_]+)*))"
    r"(?:@(?P<domain>[\p{L}\p{M}\p{Nd}\p{Pc}]+(?:[.\-]+[\p{L}\p{M}\p{Nd}\p{Pc}]+)*))?)"
)
_END_MENTION_RE = regex.compile(f"[@\uff20{_LATIN_ACCENTS}]|://")
_MAX_DOMAIN_LENGTH = 253


def _mention_spans(text: str) -> list[tuple[int, int, str]]:
    if "@" not in text and "\uff20" not in text:
        return []
    spans = []
    for match in _MENTION_RE.finditer(text):
        if _END_MENTION_RE.match(text, match.end()):
            continue
        domain = match.group("domain")
        if domain is not None and len(domain) > _MAX_DOMAIN_LENGTH:
            continue
        spans.append((match.start(), match.end(), "@" + match.group("user")))
    return spans


# --------------------------------------------------------------------------- length


def _countable_text(text: str, url_length: int) -> str:
    placeholder = "x" * url_length
    entities = sorted([(start, end, placeholder) for start, end in _url_spans(text)]
                      + _mention_spans(text))
    pieces: list[str] = []
    position = 0
    for start, end, replacement in entities:
        if start < position:
            continue  # overlaps the entity before it
        pieces.append(text[position:start])
        pieces.append(replacement)
        position = end
    pieces.append(text[position:])
    return "".join(pieces)


def mastodon_is_blank(text: str) -> bool:
    """Whether Mastodon refuses ``text`` as empty (when the status has no media)."""
    return _BLANK_RE.fullmatch(text.strip(_RUBY_STRIP)) is not None


def mastodon_length(
    text: str, *, url_length: int = MASTODON_URL_LENGTH, spoiler_text: str = ""
) -> int:
    """Mastodon's length of a status: grapheme clusters of content warning + text,
    both stripped; in the text each linked URL counts ``url_length`` and
    ``@user@domain`` counts as ``@user``."""
    text = text.strip(_RUBY_STRIP)
    countable = "" if mastodon_is_blank(text) else _countable_text(text, url_length)
    return grapheme_count(spoiler_text.strip(_RUBY_STRIP) + countable)
