"""Length rules of X, Mastodon and Bluesky: how long a post is, and whether it fits.

Pure functions, no I/O.  The X rules follow twitter-text (the library X's own clients
use), checked against its conformance data in ``tests/conformance``; the Mastodon and
Bluesky rules follow what those servers validate.  Which rule a platform uses, and
each limit's source, is in the platform registry (``content/platforms.py``).

X counts a *weighted* length: text is NFC-normalised, every URL counts 23 whatever its
length, an emoji sequence counts 2, and other code points count 1 or 2 depending on
where they sit in Unicode (Latin, Cyrillic, Greek, Arabic, Hebrew ... count 1; CJK and
most symbols count 2).  Mastodon counts grapheme clusters, with each http(s) URL
counting 23 and ``@user@domain`` counting as ``@user``.  Bluesky counts grapheme
clusters and also caps the UTF-8 size.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass, replace

import regex

__all__ = [
    "BLUESKY_LIMIT",
    "BLUESKY_MAX_BYTES",
    "MASTODON_DEFAULT_LIMIT",
    "MASTODON_URL_LENGTH",
    "X_CONFIG",
    "X_CONFIG_V1",
    "X_CONFIG_V2",
    "X_CONFIG_V3",
    "X_LIMIT",
    "X_URL_LENGTH",
    "LengthCheck",
    "XConfig",
    "bluesky_accepts",
    "bluesky_length",
    "bluesky_post_length",
    "check_all",
    "check_length",
    "find_urls",
    "mastodon_accepts",
    "mastodon_length",
    "mastodon_post_length",
    "x_accepts",
    "x_is_valid",
    "x_post_length",
    "x_weighted_length",
]

X_LIMIT = 280
X_URL_LENGTH = 23
MASTODON_DEFAULT_LIMIT = 500  # per instance: configuration.statuses.max_characters
MASTODON_URL_LENGTH = 23  # configuration.statuses.characters_reserved_per_url
BLUESKY_LIMIT = 300
BLUESKY_MAX_BYTES = 3000

# --------------------------------------------------------------------------- X config


@dataclass(frozen=True)
class XConfig:
    """One of twitter-text's counting configurations (its configs/v1.json ... v3.json).

    ``ranges`` are inclusive code point ranges with their weight; a code point in none
    of them weighs ``default_weight``.  Weights are in units of 1/``scale``.
    """

    max_weighted_length: int
    scale: int
    default_weight: int
    ranges: tuple[tuple[int, int, int], ...]
    transformed_url_length: int
    emoji_parsing: bool


# v3 is what X uses today.  v1 and v2 are kept because the conformance data still
# tests them (its "tweets" section is v1: 140 code points; "WeightedTweetsCounterTest"
# is v2: no emoji discount), and a test that pins all three catches drift in the
# shared machinery (URL extraction, normalisation, weighting).
X_CONFIG_V1 = XConfig(
    max_weighted_length=140,
    scale=1,
    default_weight=1,
    ranges=(),
    transformed_url_length=X_URL_LENGTH,
    emoji_parsing=False,
)
X_CONFIG_V2 = XConfig(
    max_weighted_length=X_LIMIT,
    scale=100,
    default_weight=200,
    ranges=(
        (0, 4351, 100),  # Latin .. Georgian: Latin, Greek, Cyrillic, Hebrew, Arabic, Indic
        (8192, 8205, 100),  # spaces, ZWSP, ZWNJ, ZWJ
        (8208, 8223, 100),  # dashes and quotation marks
        (8242, 8247, 100),  # primes
    ),
    transformed_url_length=X_URL_LENGTH,
    emoji_parsing=False,
)
X_CONFIG_V3 = replace(X_CONFIG_V2, emoji_parsing=True)
X_CONFIG = X_CONFIG_V3


# ------------------------------------------------------------------------ TLD data

# Top-level domains a URL may end in.  A URL without "http(s)://" is only recognised
# when it ends in one of these, so this list decides whether "example.xyz" costs 11 or
# 23.  twitter-text carries the full IANA list; this one has the generic TLDs people
# actually post, every two-letter country code, and the common IDN country codes.
# A domain missing here is counted character by character (an under-count only when a
# bare domain shorter than 23 characters uses a rare TLD).
_GENERIC_TLDS = """
aero app arpa art asia bar best bet bid bike bio biz black blog blue boutique build
business buzz cab cafe cam camera camp capital car cards care career careers cars casa
cash casino cat center ceo chat cheap church city claims click clinic clothing cloud club
coach codes coffee college com community company computer consulting cooking cool coop
country coupons courses credit cricket cymru dance date dating deals degree delivery
democrat dental design dev diet digital direct directory discount doctor dog domains
download earth eco edu education email energy engineer engineering enterprises
equipment estate eus events exchange expert express faith family fan fans farm fashion
film finance financial fish fit fitness flights florist flowers football forsale
foundation fun fund furniture futbol fyi gal gallery game games garden gay gift gifts
gives glass global gmbh gold golf gov graphics green group guide guru hamburg haus
health healthcare help hiphop hockey holdings holiday homes horse hospital host hosting
house how icu inc industries info ink institute insure int international investments
irish jobs kaufen kim kitchen kiwi land lat law lawyer legal lgbt life lighting limited
link live llc loan loans lol london love ltd luxury management market marketing mba
media men menu miami mil mobi moda moe mom money mov movie museum music name navy net
network new news ngo ninja nyc one ong onl online ooo org organic page paris partners
parts party pet photo photography photos pics pictures pink pizza place plus poker porn
post press pro productions promo properties property pub quebec racing radio realestate
realty recipes red rehab reise reisen rent rentals repair report republican rest
restaurant review reviews rich rip rocks run sale salon school schule science scot
security services sex sexy shoes shop shopping show site ski soccer social software solar
solutions space sport spot store stream studio study style sucks supply support surf
systems tattoo tax taxi team tech technology tel tennis theater tickets tips today tokyo
tools top tours town toys trade trading training travel tube university uno vacations
vegas ventures vet video vin vip vision vodka vote voting voyage wales watch webcam
website wedding wien wiki win wine work works world wtf xxx xyz yoga zone
онлайн сайт рус москва орг みんな コム 在线 中文网 公司 网络 移动 商城
"""

# Every delegated two-letter country code, plus IDN country codes.
_COUNTRY_TLDS = """
ac ad ae af ag ai al am ao aq ar as at au aw ax az ba bb bd be bf bg bh bi bj bm bn bo
br bs bt bv bw by bz ca cc cd cf cg ch ci ck cl cm cn co cr cu cv cw cx cy cz de dj dk
dm do dz ec ee eg er es et eu fi fj fk fm fo fr ga gb gd ge gf gg gh gi gl gm gn gp gq
gr gs gt gu gw gy hk hm hn hr ht hu id ie il im in io iq ir is it je jm jo jp ke kg kh
ki km kn kp kr kw ky kz la lb lc li lk lr ls lt lu lv ly ma mc md me mg mh mk ml mm mn
mo mp mq mr ms mt mu mv mw mx my mz na nc ne nf ng ni nl no np nr nu nz om pa pe pf pg
ph pk pl pm pn pr ps pt pw py qa re ro rs ru rw sa sb sc sd se sg sh si sj sk sl sm sn
so sr ss st su sv sx sy sz tc td tf tg th tj tk tl tm tn to tr tt tv tw tz ua ug uk us
uy uz va vc ve vg vi vn vu wf ws ye yt za zm zw
рф укр бел қаз срб мкд мон бг ελ 中国 中國 香港 台湾 台灣 新加坡 澳門 한국 ไทย भारत
پاکستان ایران مصر امارات السعودية قطر الاردن فلسطين تونس الجزائر المغرب عمان سورية
البحرين مليسيا
"""

# Without a scheme, "name.cc" alone is not a link (too many false positives such as
# "readme.md" or "node.js"), except these two ccTLDs that are used as generic ones.
_SPECIAL_SHORT_CCTLDS = frozenset({"co", "tv"})


# ------------------------------------------------------------------ URL extraction

# Character classes follow twitter-text's URL grammar.
_LATIN_ACCENTS = (
    "\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u00ff\u0100-\u024f"
    "\u0253\u0254\u0256\u0257\u0259\u025b\u0263\u0268\u026f\u0272\u0289\u028b"
    "\u02bb\u0300-\u036f\u1e00-\u1eff"
)
_CYRILLIC = "\u0400-\u04ff"
_INVALID_CHARS = "\ufffe\ufeff\uffff"  # twitter-text rejects a post containing these

# A label of a domain written in (accented) Latin letters and digits.  Possessive
# quantifiers: a 12,000-character "label" must not make the matcher backtrack.
_ASCII_CHAR = f"[a-z0-9{_LATIN_ACCENTS}]"
_SUBDOMAIN = f"{_ASCII_CHAR}++(?:[\\-_]++{_ASCII_CHAR}++)*+\\."  # may contain "_"
_DOMAIN_NAME = f"{_ASCII_CHAR}++(?:-++{_ASCII_CHAR}++)*+\\."
# After an explicit scheme a single label may be in any script ("http://☃.net"): any
# character but ASCII punctuation, spaces, General Punctuation and invalid characters.
_UNICODE_CHAR = (
    "[^\\-_!\"#$%&'()*+,./:;<=>?@\\[\\]^`{|}~\\s\\p{Z}\u2000-\u206f" + _INVALID_CHARS + "]"
)
_UNICODE_DOMAIN_NAME = f"{_UNICODE_CHAR}++(?:-++{_UNICODE_CHAR}++)*+\\."
# TLDs are regex "named lists" (\L<gtld>): matched as a set, far cheaper than an
# alternation of a few hundred words each time the matcher backtracks.
_TLD_END = "(?=[^a-z0-9@+\\-]|$)"
_GTLD = f"\\L<gtld>{_TLD_END}"
_CCTLD = f"\\L<cctld>{_TLD_END}"
_PUNYCODE_TLD = "xn--[\\-0-9a-z]+"
_GTLD_LIST = _GENERIC_TLDS.split()
_CCTLD_LIST = _COUNTRY_TLDS.split()

_DOMAIN = (
    f"(?:{_SUBDOMAIN})*{_DOMAIN_NAME}(?:{_GTLD}|{_CCTLD}|{_PUNYCODE_TLD})"
    f"|(?<=https?://){_UNICODE_DOMAIN_NAME}(?:{_GTLD}|{_CCTLD})"
)

# Path: a run of path characters that must not end in punctuation (so "see
# example.com/a." leaves the full stop out), with balanced parentheses allowed up to
# two levels deep for Wikipedia-style "/Foo_(bar)".
_PATH_CHAR = f"[a-z0-9!*';:=+,.$/%#\\[\\]\\-\u2013_~|&@{_LATIN_ACCENTS}{_CYRILLIC}]"
_PATH_END_CHAR = f"[a-z0-9=_#/\\-+{_LATIN_ACCENTS}{_CYRILLIC}]"
_PARENS = f"\\((?:{_PATH_CHAR}+|{_PATH_CHAR}*\\({_PATH_CHAR}+\\){_PATH_CHAR}*)\\)"
_PATH = f"/(?:(?:{_PATH_CHAR}|{_PARENS})*(?:{_PATH_END_CHAR}|{_PARENS}))?"
_QUERY = "\\?[a-z0-9!?*'();:&=+$/%#\\[\\]\\-_.,~|@]*[a-z0-9\\-_&=#/]"

# A URL must not be glued to a word, a mention, a cashtag or a hashtag.  Without a
# scheme it must not follow "-", "_", "." or "/" either ("-example.com" is no link).
# Putting that rule in the look-behind, rather than checking it after a match, also
# keeps the matcher from restarting at every label of "a.a.a.a..." (quadratic time).
_NOT_AFTER = f"a-z0-9@\uff20$#\uff03{_INVALID_CHARS}"
_URL_RE = regex.compile(
    "(?P<url>"
    f"(?:(?<![{_NOT_AFTER}])(?P<scheme>https?://)|(?<![{_NOT_AFTER}\\-_./]))"
    f"(?P<domain>{_DOMAIN})"
    "(?::[0-9]++)?"
    f"(?P<path>{_PATH})?"
    f"(?:{_QUERY})?"
    ")",
    regex.IGNORECASE,
    gtld=_GTLD_LIST,
    cctld=_CCTLD_LIST,
)
_SHORT_DOMAIN_RE = regex.compile(
    f"{_DOMAIN_NAME}(?P<tld>{_CCTLD})", regex.IGNORECASE, cctld=_CCTLD_LIST
)
_TCO_RE = regex.compile(f"https?://t\\.co/(?P<slug>[a-z0-9]+)(?:{_QUERY})?", regex.IGNORECASE)

_MAX_URL_LENGTH = 4096  # X's backend limit, counted with a scheme and punycode host
_MAX_TCO_SLUG_LENGTH = 40


def _host_is_valid(url: str, scheme: str, host: str) -> bool:
    """IDNA-encode the host (each label 1-63 bytes) and check X's 4096 URL cap."""
    try:
        ascii_host = host.encode("idna")
    except UnicodeError:
        return False
    length = len(url) - len(host) + len(ascii_host)
    if not scheme:
        length += len("https://")
    return length <= _MAX_URL_LENGTH


# Every URL X links has a scheme or a letter or digit on both sides of a dot.
_MAYBE_URL = re.compile(r"://|[^\W_]\.[^\W_]")


def find_urls(text: str) -> list[tuple[int, int]]:
    """Return the ``(start, end)`` spans of the URLs X would link in ``text``.

    With or without a scheme; the domain must end in a known TLD.  Without a scheme
    the URL must not follow ``-``, ``_``, ``.`` or ``/``, and a bare ``name.cc`` needs
    a path.  Hosts whose IDNA form has a label over 63 characters are not URLs.
    """
    spans: list[tuple[int, int]] = []
    if not _MAYBE_URL.search(text):
        return spans  # most posts: the full URL pattern is costly on every "."
    for match in _URL_RE.finditer(text):
        url = match.group("url")
        scheme = match.group("scheme") or ""
        domain = match.group("domain")
        start, end = match.span("url")
        if not scheme:
            short = _SHORT_DOMAIN_RE.fullmatch(domain)
            if (
                short is not None
                and not match.group("path")
                and short.group("tld").lower() not in _SPECIAL_SHORT_CCTLDS
            ):
                continue
        else:
            tco = _TCO_RE.match(url)
            if tco is not None:
                # t.co links are already short; X ignores anything after the slug.
                if len(tco.group("slug")) > _MAX_TCO_SLUG_LENGTH:
                    continue
                url = tco.group(0)
                end = start + len(url)
        if _host_is_valid(url, scheme, domain):
            spans.append((start, end))
    return spans


# -------------------------------------------------------------------------- emoji

# One emoji "character" as a user sees it.  Text-default symbols that would weigh 1 as
# text (©, ®) only count as emoji with the emoji variation selector; any emoji followed
# by the text variation selector (U+FE0E) is text.  ASCII digits, "#" and "*" have the
# Emoji property but only form emoji as keycaps.
_EMOJI_ELEMENT = (
    "(?:[\u00a9\u00ae]\ufe0f"
    "|(?![\\x00-\\x7f\u00a9\u00ae])\\p{Emoji}(?:\ufe0f|(?!\ufe0e))"
    "\\p{Emoji_Modifier}?"  # skin tone
    "(?:[\U000e0020-\U000e007e]+\U000e007f)?"  # tag sequence: subdivision flags
    ")"
)
_EMOJI_RE = regex.compile(
    "\\p{Regional_Indicator}{2}"  # flag
    "|[#*0-9]\ufe0f?\u20e3"  # keycap
    f"|{_EMOJI_ELEMENT}(?:\u200d{_EMOJI_ELEMENT})*"  # ZWJ sequence, or a single emoji
)


# ------------------------------------------------------------------------------ X


@functools.lru_cache(maxsize=8)
def _weight_classes(config: XConfig) -> tuple[tuple[re.Pattern[str], int], ...]:
    """One character class per range, with how much lighter than the default it is."""
    return tuple((re.compile(f"[{re.escape(chr(first))}-{re.escape(chr(last))}]"),
                  config.default_weight - weight)
                 for first, last, weight in config.ranges if weight != config.default_weight)


def _plain_units(segment: str, config: XConfig) -> int:
    """Weighted units of text holding no URL or emoji: every code point weighs the
    default, less the discount of the ranges it falls in (counted with C-speed
    regexes rather than a Python loop per character: planning renders 100,000 posts)."""
    units = config.default_weight * len(segment)
    if segment.isascii() and config.ranges and config.ranges[0][0] == 0 and config.ranges[0][1] >= 127:
        return units - (config.default_weight - config.ranges[0][2]) * len(segment)
    for pattern, discount in _weight_classes(config):
        units -= discount * len(pattern.findall(segment))
    return units


_INVALID_SET = frozenset(_INVALID_CHARS)


def _has_invalid_characters(text: str) -> bool:
    # NFC leaves these three alone, so the raw text can be searched.
    return not _INVALID_SET.isdisjoint(text)


def x_weighted_length(text: str, *, config: XConfig = X_CONFIG) -> int:
    """The length X gives ``text`` (twitter-text ``parseTweet().weightedLength``)."""
    ascii_only = text.isascii()  # ASCII is already NFC, and holds no emoji
    normalized = text if ascii_only else unicodedata.normalize("NFC", text)
    url_end = dict(find_urls(normalized))
    emoji_end: dict[int, int] = {}
    if config.emoji_parsing and not ascii_only:
        emoji_end = {m.start(): m.end() for m in _EMOJI_RE.finditer(normalized)}

    # URLs first where an emoji would start at the same place (twitter-text does too)
    spans = sorted([(start, 0, end) for start, end in url_end.items()]
                   + [(start, 1, end) for start, end in emoji_end.items()])
    units = 0  # in 1/scale
    index = 0
    for start, kind, end in spans:
        if start < index:
            continue  # inside a URL already counted
        units += _plain_units(normalized[index:start], config)
        units += config.transformed_url_length * config.scale if kind == 0 else config.default_weight
        index = end
    units += _plain_units(normalized[index:], config)
    return units // config.scale


def x_is_valid(text: str, *, config: XConfig = X_CONFIG) -> bool:
    """Whether X accepts ``text``: 0 < weighted length <= limit, no invalid characters.

    The invalid characters are U+FFFE, U+FEFF and U+FFFF.  Directional formatting
    characters (U+202A-U+202E, U+2066-U+2069) are allowed: older twitter-text
    releases rejected U+202A-U+202E, the current one and its conformance data do not.
    """
    length = x_weighted_length(text, config=config)
    return 0 < length <= config.max_weighted_length and not _has_invalid_characters(text)


# ----------------------------------------------------------------------- Mastodon

# A remote mention "@user@domain"; Mastodon counts only the "@user" part.  Not after a
# word character, "/" or "=" (so e-mail addresses and URL paths are left alone).
_REMOTE_MENTION_RE = regex.compile(
    "(?<![=/\\w])(?P<user>@[a-z0-9_]+(?:[.\\-]+[a-z0-9_]+)*)@\\w+(?:[.\\-]+\\w+)*",
    regex.IGNORECASE,
)
_GRAPHEME_RE = regex.compile(r"\X")


def _graphemes(text: str) -> int:
    return len(_GRAPHEME_RE.findall(text))


def _mastodon_countable(text: str, url_length: int) -> str:
    # Mastodon only links URLs that carry a scheme, so a bare "example.com" is
    # counted as typed.
    urls = [
        (start, end)
        for start, end in find_urls(text)
        if text[start:end].lower().startswith(("http://", "https://"))
    ]
    replacements: list[tuple[int, int, str]] = [
        (start, end, "x" * url_length) for start, end in urls
    ]
    for mention in _REMOTE_MENTION_RE.finditer(text):
        start, end = mention.span()
        if not any(u_start < end and start < u_end for u_start, u_end in urls):
            replacements.append((start, end, mention.group("user")))
    pieces: list[str] = []
    position = 0
    for start, end, replacement in sorted(replacements):
        pieces.append(text[position:start])
        pieces.append(replacement)
        position = end
    pieces.append(text[position:])
    return "".join(pieces)


def mastodon_length(
    text: str, *, url_length: int = MASTODON_URL_LENGTH, spoiler_text: str = ""
) -> int:
    """Mastodon's length of a status: grapheme clusters of content warning + text.

    Each http(s) URL counts ``url_length``; ``@user@domain`` counts as ``@user``.
    """
    countable = _mastodon_countable(spoiler_text, url_length) + _mastodon_countable(
        text, url_length
    )
    return _graphemes(countable)


# ------------------------------------------------------------------------ Bluesky


def bluesky_length(text: str) -> int:
    """Bluesky's length of a post: grapheme clusters (the UTF-8 cap is separate)."""
    return _graphemes(text)


# ------------------------------------------------------------------------- checks


@dataclass(frozen=True)
class LengthCheck:
    """The length of a text on one platform against that platform's limit."""

    platform: str  # "x" | "mastodon" | "bluesky" | "dryrun"
    length: int
    limit: int
    ok: bool
    unit: str  # "weighted chars", "chars" or "graphemes"

    def as_dict(self) -> dict[str, object]:
        return {"length": self.length, "limit": self.limit, "ok": self.ok}


# One signature per platform, for the platform registry (``content/platforms.py``),
# which names these and checks a post with them (``check_length``): the length of a
# post with its content warning, and whether the platform takes it beyond its length.


def x_post_length(text: str, content_warning: str = "") -> int:
    """X has no content warning: the weighted length of the text alone."""
    return x_weighted_length(text)


def x_accepts(text: str) -> bool:
    """X refuses U+FFFE, U+FEFF and U+FFFF whatever the length."""
    return not _has_invalid_characters(text)


def mastodon_post_length(text: str, content_warning: str = "") -> int:
    """Mastodon counts the content warning together with the text."""
    return mastodon_length(text, spoiler_text=content_warning)


def mastodon_accepts(text: str) -> bool:
    """Mastodon demands nothing of a text beyond its length."""
    return True


def bluesky_post_length(text: str, content_warning: str = "") -> int:
    """A Bluesky content warning is a label, not text: the text alone counts."""
    return bluesky_length(text)


def bluesky_accepts(text: str) -> bool:
    """Bluesky also caps the UTF-8 size of the text."""
    return len(text.encode("utf-8")) <= BLUESKY_MAX_BYTES


def check_length(platform: str, text: str, *, limit: int | None = None,
                 spoiler_text: str = "") -> LengthCheck:
    """Check ``text`` against ``platform``'s rule; ``limit`` overrides its default.

    Which rule a platform uses is the platform registry's (``content.platforms``); it
    names the counters above, so it is imported here when called, not at import."""
    from content.platforms import check_length as registry_check
    return registry_check(platform, text, limit=limit, spoiler_text=spoiler_text)


def check_all(text: str) -> dict[str, LengthCheck]:
    """``text`` against the default limit of every real platform (not the dry run)."""
    from content.platforms import check_all as registry_check_all
    return registry_check_all(text)
