"""X's length of a post: twitter-text 3.1.0's ``parseTweet``, reimplemented exactly.

What X counts (``weightedLength``): the NFC form of the text, where every URL costs 23,
every emoji 2, and every other character 1 or 2 by where it sits in Unicode.  What
"URL" and "emoji" mean is twitter-text's own definition, which this module follows to
the quirk, because a post X refuses at the deadline is a failed post:

- URLs are found by twitter-text's URL grammar (written out below) over its TLD lists;
  without a scheme only the ASCII part of a domain is linked ("国.b.org" links
  "b.org"), and the path or query of a bare domain is kept only when it has a path.
- Emoji are the sequences twemoji-parser 11.0.2 knows (``x_data``), longest first.
- twitter-text runs in JavaScript, whose strings are UTF-16 and whose case-insensitive
  regexes (without the ``u`` flag) fold case by upper-casing one code unit at a time.
  Its grammar depends on both: a match may begin between the two halves of an emoji,
  and "ı" is not "I".  So the URL search runs on the text as UTF-16 code units, case
  folded the way JavaScript folds it, and the grammar is written in that folded form.

The result is checked against the npm package itself over thousands of generated texts
(tests/test_lengths_reference.py).  Plain ASCII with no dot before a letter skips all of it.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from array import array
from dataclasses import dataclass

from content.rules import x_data

__all__ = ["X_CONFIG", "X_CONFIG_V1", "X_CONFIG_V2", "X_CONFIG_V3", "XConfig", "find_urls",
           "x_is_valid", "x_weighted_length"]


@dataclass(frozen=True)
class XConfig:
    """One of twitter-text's counting configurations (its configs v1, v2 and v3).

    ``ranges`` are inclusive code point ranges with their weight; a code point in none
    of them weighs ``default_weight``.  Weights are in units of 1/``scale``.
    """

    max_weighted_length: int
    scale: int
    default_weight: int
    ranges: tuple[tuple[int, int, int], ...]
    transformed_url_length: int
    emoji_parsing: bool

    @functools.cached_property
    def ascii_weight(self) -> int | None:
        """The one weight every ASCII character has, if there is one (kept on the
        config: a cache keyed by it would hash its ranges for every post)."""
        weights = {next((w for first, last, w in self.ranges if first <= code <= last),
                        self.default_weight) for code in range(128)}
        return weights.pop() if len(weights) == 1 else None


X_URL_LENGTH = 23
# v3 is what X uses.  v1 and v2 stay because twitter-text's conformance data tests
# them, which pins the shared machinery (URLs, normalisation, weights) three ways.
X_CONFIG_V1 = XConfig(140, 1, 1, (), X_URL_LENGTH, emoji_parsing=False)
X_CONFIG_V2 = XConfig(
    280, 100, 200,
    (
        (0, 4351, 100),  # Latin .. Georgian: Latin, Greek, Cyrillic, Hebrew, Arabic, Indic
        (8192, 8205, 100),  # spaces, ZWSP, ZWNJ, ZWJ
        (8208, 8223, 100),  # dashes and quotation marks
        (8242, 8247, 100),  # primes
    ),
    X_URL_LENGTH, emoji_parsing=False,
)
X_CONFIG_V3 = XConfig(280, 100, 200, X_CONFIG_V2.ranges, X_URL_LENGTH, emoji_parsing=True)
X_CONFIG = X_CONFIG_V3

_INVALID = "\ufffe\ufeff\uffff"  # X refuses a post holding any of these


# ------------------------------------------------------------ JavaScript's strings


def _fold_char(char: str) -> str:
    # ECMAScript's Canonicalize for a case-insensitive, non-unicode regex: upper-case
    # one code unit, unless that gives several units or turns non-ASCII into ASCII.
    upper = char.upper()
    if len(upper) != 1 or (ord(char) >= 128 and ord(upper) < 128):
        return char
    return upper


class _FoldTable(dict[int, int]):
    """str.translate table for _fold_char, filled in as characters are met."""

    def __missing__(self, code: int) -> int:
        folded = ord(_fold_char(chr(code)))
        self[code] = folded
        return folded


_FOLD = _FoldTable()


def _fold(text: str) -> str:
    return text.upper() if text.isascii() else text.translate(_FOLD)


def _fold_set(chars: str) -> str:
    """A regex class body matching what JavaScript's /[chars]/i matches, folded."""
    folded = sorted({_fold_char(char) for char in chars})
    return "".join(re.escape(char) for char in folded)


_ASTRAL = re.compile("[\U00010000-\U0010ffff]")


def _utf16(text: str) -> str:
    """``text`` as one character per UTF-16 code unit (astral ones become two halves)."""
    if not _ASTRAL.search(text):
        return text
    units = array("H")
    units.frombytes(text.encode("utf-16-le", "surrogatepass"))
    return "".join(map(chr, units))


def _code_points(utf16: str) -> str:
    return utf16.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "surrogatepass")


def _chars(first: int, last: int) -> str:
    return "".join(map(chr, range(first, last + 1)))


# ------------------------------------------------------------------ URL grammar

# twitter-text's character groups (its regexp/*.js), spelt as sets.
_LATIN_ACCENTS = (_chars(0xC0, 0xD6) + _chars(0xD8, 0xF6) + _chars(0xF8, 0xFF)
                  + _chars(0x100, 0x24F) + "\u0253\u0254\u0256\u0257\u0259\u025b\u0263\u0268"
                  "\u026f\u0272\u0289\u028b\u02bb" + _chars(0x300, 0x36F) + _chars(0x1E00, 0x1EFF))
_CYRILLIC = _chars(0x400, 0x4FF)
_PUNCT = "!'#%&()*+,\\-./:;<=>?@[]^_{|}~$"  # ASCII punctuation less '"' and '`'
_SPACES = (_chars(0x09, 0x0D) + " \x85\xa0\u1680\u180e" + _chars(0x2000, 0x200A)
           + "\u2028\u2029\u202f\u205f\u3000")
_DIRECTIONAL = _chars(0x202A, 0x202E) + "\u061c\u200e\u200f\u2066\u2067\u2068\u2069"

_ALNUM = _fold_set("abcdefghijklmnopqrstuvwxyz0123456789")
_DOMAIN_CHAR = f"[^{_fold_set(_PUNCT + _SPACES + _INVALID + _DIRECTIONAL)}]"
_SUBDOMAIN = f"(?:(?:{_DOMAIN_CHAR}(?:[_\\-]|{_DOMAIN_CHAR})*)?{_DOMAIN_CHAR}\\.)"
_DOMAIN_NAME = f"(?:(?:{_DOMAIN_CHAR}(?:-|{_DOMAIN_CHAR})*)?{_DOMAIN_CHAR}\\.)"
_TLD_END = f"(?=[^{_ALNUM}@+\\-]|\\Z)"


def _trie(words: set[str]) -> str:
    """An alternation of ``words`` as a prefix tree, longer continuations first.

    twitter-text tries its TLDs in list order; here the longest one that fits is tried
    first.  The two agree because no TLD that is a prefix of another ends where the
    look-ahead below would let it stop (tests/test_rules.py checks the lists), and the
    tree makes each attempt cost a few steps instead of some 1,500."""
    children: dict[str, set[str]] = {}
    ends = False
    for item in words:
        if item:
            children.setdefault(item[0], set()).add(item[1:])
        else:
            ends = True
    branches = [re.escape(head) + _trie(rest) for head, rest in sorted(children.items())]
    if not branches:
        return ""
    body = "|".join(branches)
    return f"(?:{body})?" if ends else f"(?:{body})"


def _tlds(names: tuple[str, ...]) -> str:
    return f"(?:{_trie({_fold(name) for name in names})}{_TLD_END})"


_PUNYCODE = f"(?:XN--[\\-{_ALNUM}]+)"


@functools.cache
def _tld() -> str:
    # built when a pattern first needs it: the trees take a moment too
    return f"(?:{_tlds(x_data.GTLDS)}|{_tlds(x_data.CCTLDS)}|{_PUNYCODE})"


_PATH_CHAR = f"[{_fold_set('abcdefghijklmnopqrstuvwxyz0123456789' + _CYRILLIC + _LATIN_ACCENTS)}" \
             "!*';:=+,.$/%#\\[\\]\\-\u2013_~@|&]"
_PARENS = f"\\((?:{_PATH_CHAR}+|(?:{_PATH_CHAR}*\\({_PATH_CHAR}+\\){_PATH_CHAR}*))\\)"
_PATH_END = f"[{_fold_set('abcdefghijklmnopqrstuvwxyz0123456789' + _CYRILLIC + _LATIN_ACCENTS)}+\\-=_#/]"
# twitter-text splices its "ending characters" (a class, "|", balanced parentheses)
# into the path without a group, so the "|" splits the path instead: a path segment
# is characters ending on an ending character, or balanced parentheses alone.
_PATH = f"(?:(?:{_PATH_CHAR}*(?:{_PARENS}{_PATH_CHAR}*)*{_PATH_END}|(?:{_PARENS}))|(?:@{_PATH_CHAR}+/))"
_QUERY_CHAR = f"[{_ALNUM}!?*'@();:&=+$/%#\\[\\]\\-_.,~|]"
_QUERY_END = f"[{_ALNUM}\\-_&=#/]"
_QUERY = f"\\?{_QUERY_CHAR}*{_QUERY_END}"

class _Grammar:
    """twitter-text's patterns, each compiled on first use, not at import: every one that
    holds the TLD trees takes a moment (tens of milliseconds), and most texts need at
    most `tld_after_dot`, the test that turns away a text with dots but no link."""

    @functools.cached_property
    def url(self) -> re.Pattern[str]:
        return re.compile(
            f"(?P<before>[^{_ALNUM}@\uff20$#\uff03{_INVALID}]|[{_DIRECTIONAL}]|^)"
            "(?P<url>"
            "(?P<protocol>HTTPS?://)?"
            f"(?P<domain>(?:{_SUBDOMAIN}*{_DOMAIN_NAME}{_tld()}))"
            "(?::[0-9]+)?"
            f"(?P<path>/{_PATH}*)?"
            f"(?:{_QUERY})?"
            ")"
        )

    @functools.cached_property
    def ascii_domain(self) -> re.Pattern[str]:
        return re.compile(
            f"(?:[\\-{_fold_set('abcdefghijklmnopqrstuvwxyz0123456789' + _LATIN_ACCENTS)}]+\\.)+{_tld()}"
        )

    @functools.cached_property
    def tld_after_dot(self) -> re.Pattern[str]:
        return re.compile(f"\\.{_tld()}")

    @functools.cached_property
    def tco(self) -> re.Pattern[str]:
        return re.compile(f"HTTPS?://T\\.CO/([{_ALNUM}]+)(?:{_QUERY})?")


_GRAMMAR = _Grammar()


def _grammar() -> _Grammar:
    return _GRAMMAR


# A dot before a letter or digit: every TLD starts with one (tests/test_rules.py checks
# the lists), so a text without one ("the end." or "yes... no.") compiles no pattern.
_DOT_WORD = re.compile(r"\.\w")


_NOT_AFTER_BARE = frozenset("-_./")  # no bare domain right after these
_PUNYCODE_SEPARATORS = re.compile("[.\u3002\uff0e\uff61]")
_NOT_PRINTABLE_ASCII = re.compile("[^\x20-\x7e]")
_MAX_URL_LENGTH = 4096
_MAX_TCO_SLUG = 40
_MAX_LABEL = 63


def _label_length(label: str) -> int:
    """Length of punycode.js 1.4.1's toASCII(label): separators split it again."""
    parts = _PUNYCODE_SEPARATORS.split(_code_points(label))
    length = len(parts) - 1
    for part in parts:
        if _NOT_PRINTABLE_ASCII.search(part):
            length += 4 + len(part.encode("punycode"))  # "xn--" + RFC 3492 encoding
        else:
            length += len(part)
    return length


def _is_valid_url(url: str, protocol: str, domain: str, folded_domain: str) -> bool:
    # twitter-text's isValidUrl: a punycode-looking domain must hold an ASCII domain,
    # every label 1..63 long once encoded, and the URL (with a scheme) within 4096.
    if domain.startswith("xn--") and not _grammar().ascii_domain.search(folded_domain):
        return False
    if not all(1 <= _label_length(label) <= _MAX_LABEL for label in domain.split(".")):
        return False
    return len(protocol or "https://") + len(url) <= _MAX_URL_LENGTH


@dataclass(frozen=True)
class _Url:
    start: int  # in UTF-16 code units of the NFC text
    end: int
    skip: int  # how far the weighing jumps: twitter-text uses its url's length


def _extract_urls(text: str) -> list[_Url]:
    """twitter-text's extractUrlsWithIndices over ``text`` (UTF-16 units, NFC)."""
    if "." not in text:
        return []
    folded = _fold(text)
    grammar = _grammar()
    if not _DOT_WORD.search(folded) or not grammar.tld_after_dot.search(folded):
        # Every URL has a TLD after a dot.  Checking that first keeps a long run of
        # dotted labels with no TLD (twitter-text's grammar is quadratic on it) cheap.
        return []
    urls: list[_Url] = []
    for match in grammar.url.finditer(folded):
        start, end = match.span("url")
        url, domain = text[start:end], text[slice(*match.span("domain"))]
        protocol = match.group("protocol") or ""
        if not _is_valid_url(url, protocol, domain, match.group("domain")):
            continue
        if protocol:
            tco = grammar.tco.match(folded, start, end)
            if tco is not None:
                if len(tco.group(1)) > _MAX_TCO_SLUG:
                    continue
                end = tco.end()
            urls.append(_Url(start, end, end - start))
            continue
        if match.group("before") in _NOT_AFTER_BARE:
            continue
        # No scheme: link only the ASCII domains inside the matched domain; the last one
        # keeps the path and query, if there is a path.
        domain_start = match.start("domain")
        found: list[_Url] = []
        position = 0
        for ascii_match in grammar.ascii_domain.finditer(match.group("domain")):
            ascii_domain = domain[ascii_match.start():ascii_match.end()]
            position = domain.find(ascii_domain, position)  # as twitter-text finds it
            found.append(_Url(domain_start + position, domain_start + position + len(ascii_domain),
                              len(ascii_domain)))
            position += len(ascii_domain)
        if found and match.group("path") is not None:
            last = found[-1]
            # twitter-text replaces the domain by the ASCII one in its url: that length
            # is what the weighing skips, even where the domain held more.
            found[-1] = _Url(last.start, end, len(url) - len(domain) + last.skip)
        urls.extend(found)
    return urls


# ------------------------------------------------------------------------- emoji


@functools.cache
def _emoji_index() -> tuple[dict[str, bool], dict[str, tuple[int, ...]], re.Pattern[str]]:
    """Every emoji as UTF-16 units -> whether it needs "no U+FE0E next"; per first
    unit the lengths to try, longest first (longest match is what twemoji's regex
    picks: the data test checks it); and the pattern of those first units. Built for
    the first text whose emoji are counted: a process that only finds links (a
    rehearsal's printed table cuts texts around them) never needs it (10 ms)."""
    needs: dict[str, bool] = {}
    for sequence in x_data.EMOJI:
        needs[_utf16(sequence)] = False
    for sequence in x_data.EMOJI_UNLESS_FE0E:
        needs[_utf16(sequence)] = True
    lengths: dict[str, set[int]] = {}
    for units in needs:
        lengths.setdefault(units[0], set()).add(len(units))
    first = re.compile("[" + "".join(re.escape(unit) for unit in sorted(lengths)) + "]")
    return (needs, {unit: tuple(sorted(sizes, reverse=True)) for unit, sizes in lengths.items()},
            first)


def _extract_emoji(text: str) -> dict[int, int]:
    """Start -> end of each emoji twemoji-parser finds in ``text`` (UTF-16 units)."""
    emoji_needs, emoji_lengths, emoji_first = _emoji_index()
    found: dict[int, int] = {}
    position = 0
    while True:
        candidate = emoji_first.search(text, position)
        if candidate is None:
            return found
        start = candidate.start()
        position = start + 1
        for size in emoji_lengths[text[start]]:
            units = text[start:start + size]
            needs = emoji_needs.get(units)
            if needs is None or len(units) != size:
                continue
            if needs and text.startswith("\ufe0e", start + size):
                continue
            found[start] = start + size
            position = start + size
            break


# -------------------------------------------------------------------------- weights


@functools.lru_cache(maxsize=8)
def _discounts(config: XConfig) -> tuple[tuple[re.Pattern[str], int], ...]:
    """One character class per range, with how much lighter than the default it is."""
    return tuple((re.compile(f"[{re.escape(chr(first))}-{re.escape(chr(last))}]"),
                  config.default_weight - weight)
                 for first, last, weight in config.ranges if weight != config.default_weight)




def _plain_units(segment: str, config: XConfig) -> int:
    """Weighted units of text holding no URL or emoji, counted with C-speed regexes
    rather than a Python loop per character (planning weighs 100,000 posts)."""
    if segment.isascii():
        weight = config.ascii_weight
        if weight is not None:
            return weight * len(segment)
    if max(segment, default="\0") >= "\ud800":
        segment = _code_points(segment)  # a surrogate pair weighs as one character
    units = config.default_weight * len(segment)
    for pattern, discount in _discounts(config):
        units -= discount * len(pattern.findall(segment))
    return units


# Every TLD twitter-text knows begins with a letter (tests/test_rules.py checks the
# lists), so in ASCII text a URL needs a dot with an ASCII letter right after it.
_DOT_LETTER = re.compile("[.][A-Za-z]")


def _weighted_units(text: str, config: XConfig) -> int:
    if text.isascii() and not _DOT_LETTER.search(text):
        # most posts ("… left. Call …"): no URL can start here, ASCII has no emoji and
        # NFC leaves it alone, so every character weighs the same
        return _plain_units(text, config)
    normalized = _utf16(unicodedata.normalize("NFC", text))
    urls = {url.start: url.skip for url in _extract_urls(normalized)}
    # No emoji is plain ASCII (keycaps need U+20E3), so ASCII skips the emoji search.
    emoji = _extract_emoji(normalized) if config.emoji_parsing and not text.isascii() else {}
    units = 0
    index = 0
    for start in sorted(urls.keys() | emoji.keys()):
        if start < index:
            continue  # inside a URL or emoji already counted
        units += _plain_units(normalized[index:start], config)
        if start in urls:  # a URL wins over an emoji starting at the same place
            units += config.transformed_url_length * config.scale
            index = start + urls[start]
        else:
            units += config.default_weight
            index = emoji[start]
    return units + _plain_units(normalized[index:], config)


def x_weighted_length(text: str, *, config: XConfig = X_CONFIG) -> int:
    """The length X gives ``text`` (twitter-text ``parseTweet().weightedLength``)."""
    return _weighted_units(text, config) // config.scale


def x_is_valid(text: str, *, config: XConfig = X_CONFIG) -> bool:
    """Whether X accepts ``text``: 0 < weighted length <= limit, and none of U+FFFE,
    U+FEFF, U+FFFF.  Directional formatting characters are allowed (twitter-text 3.1.0
    and its conformance data accept them)."""
    length = x_weighted_length(text, config=config)
    return 0 < length <= config.max_weighted_length and not has_invalid_characters(text)


def has_invalid_characters(text: str) -> bool:
    # NFC leaves these three alone, so the raw text can be searched (none is ASCII).
    return not text.isascii() and any(char in text for char in _INVALID)


def find_urls(text: str) -> list[tuple[int, int]]:
    """The ``(start, end)`` spans, in code points of the NFC text, of what X links."""
    normalized = unicodedata.normalize("NFC", text)
    utf16 = _utf16(normalized)
    if utf16 is normalized:
        return [(url.start, url.end) for url in _extract_urls(normalized)]
    # Map UTF-16 offsets back to code points.
    return [(len(_code_points(utf16[:url.start])), len(_code_points(utf16[:url.end])))
            for url in _extract_urls(utf16)]
