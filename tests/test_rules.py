"""Tests of content.rules: X against twitter-text's conformance data, Mastodon, Bluesky."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from content.platforms import check_all, check_length
from content.rules import (
    BLUESKY_LIMIT,
    BLUESKY_MAX_BYTES,
    MASTODON_DEFAULT_LIMIT,
    X_CONFIG,
    X_CONFIG_V1,
    X_CONFIG_V2,
    X_CONFIG_V3,
    X_LIMIT,
    LengthCheck,
    bluesky_length,
    find_urls,
    mastodon_is_blank,
    mastodon_length,
    x_data,
    x_is_valid,
    x_weighted_length,
)

# twitter-text's own conformance data, kept as the project's test data (source and
# licence in tests/conformance/README.md).
CONFORMANCE = Path(__file__).resolve().parent / "conformance" / "twitter-text-validate.yml"
SECTIONS: dict[str, list[dict[str, Any]]] = yaml.safe_load(
    CONFORMANCE.read_text(encoding="utf-8")
)["tests"]

FAMILY = "\U0001f468\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466"  # 4 people, 3 ZWJ


def cases(section: str) -> list[Any]:
    return [
        pytest.param(case, id=f"{index:02d}-{case['description']}")
        for index, case in enumerate(SECTIONS[section])
    ]


def test_conformance_file_is_read_whole() -> None:
    # A YAML reader that dropped cases or left "\U0001f431" escapes undecoded would
    # make the parametrised tests below pass vacuously or for the wrong reason.
    assert {
        name: len(SECTIONS[name])
        for name in (
            "tweets",
            "WeightedTweetsCounterTest",
            "WeightedTweetsWithDiscountedEmojiCounterTest",
            "UnicodeDirectionalMarkerCounterTest",
        )
    } == {
        "tweets": 8,
        "WeightedTweetsCounterTest": 20,
        "WeightedTweetsWithDiscountedEmojiCounterTest": 22,
        "UnicodeDirectionalMarkerCounterTest": 2,
    }
    cats = SECTIONS["tweets"][4]["text"]
    assert cats == "\U0001f431" * 140


# --------------------------------------------------------------- X: conformance


@pytest.mark.parametrize("case", cases("tweets"))
def test_conformance_tweets_v1(case: dict[str, Any]) -> None:
    # This section predates weighting: twitter-text checks it with config v1 (140
    # code points, URLs 23).  Under v3 its two "141 characters" cases weigh 143 and
    # would be valid, so it cannot be checked against the 280 rules.
    assert x_is_valid(case["text"], config=X_CONFIG_V1) is case["expected"]


@pytest.mark.parametrize("case", cases("WeightedTweetsCounterTest"))
def test_conformance_weighted_v2(case: dict[str, Any]) -> None:
    # twitter-text checks this section with config v2 (emoji not discounted).
    expected = case["expected"]
    assert x_weighted_length(case["text"], config=X_CONFIG_V2) == expected["weightedLength"]
    assert x_is_valid(case["text"], config=X_CONFIG_V2) is expected["valid"]


@pytest.mark.parametrize("case", cases("WeightedTweetsWithDiscountedEmojiCounterTest"))
def test_conformance_weighted_v3(case: dict[str, Any]) -> None:
    expected = case["expected"]
    assert x_weighted_length(case["text"]) == expected["weightedLength"]
    assert x_is_valid(case["text"]) is expected["valid"]
    check = check_length("x", case["text"])
    assert (check.length, check.ok) == (expected["weightedLength"], expected["valid"])


@pytest.mark.parametrize("case", cases("UnicodeDirectionalMarkerCounterTest"))
def test_conformance_directional_markers(case: dict[str, Any]) -> None:
    expected = case["expected"]
    assert x_weighted_length(case["text"]) == expected["weightedLength"]
    assert x_is_valid(case["text"]) is expected["valid"]


# ------------------------------------------------------------------- X: units


def test_x_configs() -> None:
    assert X_CONFIG is X_CONFIG_V3
    assert X_CONFIG_V3.emoji_parsing and not X_CONFIG_V2.emoji_parsing
    assert X_CONFIG_V3.max_weighted_length == X_LIMIT == 280
    assert X_CONFIG_V1.max_weighted_length == 140


@pytest.mark.parametrize(
    ("text", "length"),
    [
        ("a" * 280, 280),
        ("\u3042" * 140, 280),  # CJK weighs 2
        ("\u0436" * 280, 280),  # Cyrillic weighs 1
        ("\u2014\u2019\u2032", 3),  # dash, quote, prime: in the weight-1 ranges
        ("\u2122", 2),  # trade mark: outside them
        ("e\u0301", 1),  # NFC composes it to one code point
        ("\u00a9", 1),  # (c) as text weighs 1 ...
        ("\u00a9\ufe0f", 2),  # ... and 2 as an emoji
        ("\u263a\ufe0e", 4),  # text presentation: two symbols of 2
        ("#\ufe0f\u20e3", 2),  # keycap
        ("\U0001f1ef\U0001f1f5", 2),  # flag
        ("\U0001f44d\U0001f3fd", 2),  # skin tone
        (FAMILY, 2),  # ZWJ sequence
        ("\U0001f3f3\ufe0f\u200d\U0001f308", 2),  # rainbow flag
        ("12", 2),  # digits are not emoji
        ("see https://example.com/" + "a" * 200, 4 + 23),
        ("example.com", 23),
        ("a" * 63 + ".com", 23),
        ("a" * 64 + ".com", 68),  # label over 63 characters: not a host
        ("readme.md", 23),  # twitter-text 3.1.0 links a bare domain on any ccTLD (.md)
        ("bit.ly/abc", 23),
        ("a.io", 23),
        ("ok.google", 23),  # a TLD from twitter-text's own list
        ("x.music", 7),  # ... which does not have .music
        ("act.org?src=tw", 30),  # no scheme, no path: only the domain is linked
        ("act.org/?src=tw", 23),
        ("www.my_site.example.com/a", 47),  # "_": only example.com/a is linked
        ("国.b.org", 26),  # no scheme: only the ASCII domain is linked
        ("❤‍❤", 5),  # no such ZWJ sequence in twemoji 11: two hearts
        ("⏳️", 4),  # a stray U+FE0F is an emoji of its own
        ("🇽🇽", 4),  # two regional indicators that are no flag
        ("🫱🏻", 4),  # newer than the reference's emoji data
    ],
)
def test_x_weighted_length(text: str, length: int) -> None:
    assert x_weighted_length(text) == length


def test_x_limit_boundaries() -> None:
    assert x_is_valid("a" * 280)
    assert not x_is_valid("a" * 281)
    assert x_is_valid("\u3042" * 140)
    assert not x_is_valid("\u3042" * 140 + "a")
    assert x_is_valid("\U0001f431" * 140)
    assert not x_is_valid("\U0001f431" * 141)
    assert not x_is_valid("")


@pytest.mark.parametrize("char", ["\ufffe", "\ufeff", "\uffff"])
def test_x_invalid_characters(char: str) -> None:
    assert not x_is_valid(f"hello {char}world")
    assert not check_length("x", f"hello {char}world").ok
    assert not check_length("dryrun", f"hello {char}world").ok


@pytest.mark.parametrize("char", ["\u202a", "\u202e", "\u2066", "\u200f"])
def test_x_directional_characters_are_allowed(char: str) -> None:
    # Older twitter-text rejected U+202A-U+202E; the current one (and its conformance
    # data, UnicodeDirectionalMarkerCounterTest) accepts them.
    assert x_is_valid(f"hello {char}world")


@pytest.mark.parametrize(
    ("text", "urls"),
    [
        ("Hi http://test.co", ["http://test.co"]),
        ("HTTPS://www.ExaMPLE.COM/index.html", ["HTTPS://www.ExaMPLE.COM/index.html"]),
        ("see example.com/a.", ["example.com/a"]),  # trailing full stop left out
        ("(see https://example.com/x)", ["https://example.com/x"]),
        ("http://en.wikipedia.org/wiki/Foo_(bar)", ["http://en.wikipedia.org/wiki/Foo_(bar)"]),
        ("q: example.com/p?a=1&b=2.", ["example.com/p?a=1&b=2"]),
        ("\u8a73\u3057\u304f\u306fexample.com\u3078", ["example.com"]),  # no spaces in Japanese
        ("http://\u2603.net/", ["http://\u2603.net/"]),  # IDN host after a scheme
        ("foo.co.jp and t.co", ["foo.co.jp", "t.co"]),
        ("bit.ly readme.md", ["bit.ly", "readme.md"]),
        ("see http://t.af/;(x)", ["http://t.af/"]),  # twitter-text's path grammar
        ("user@example.com", []),  # e-mail address
        ("-example.com _example.com /example.com", []),
        ("$AAPL.com #tag.com", []),
        ("example.invalidtld", []),
        ("https://t.co/abc/def", ["https://t.co/abc"]),  # t.co: slug only
        ("https://t.co/" + "a" * 41, []),  # t.co slug over 40
        ("a dot. no url", []),
    ],
)
def test_find_urls(text: str, urls: list[str]) -> None:
    assert [text[start:end] for start, end in find_urls(text)] == urls


def test_find_urls_spans() -> None:
    text = "a https://example.com b www.example.org/x"
    assert find_urls(text) == [(2, 21), (24, 41)]


# -------------------------------------------------------------------- Mastodon


@pytest.mark.parametrize(
    ("text", "length"),
    [
        ("hello", 5),
        ("see https://example.com/" + "a" * 100, 4 + 23),
        ("http://a.io https://b.io/x", 23 + 1 + 23),
        ("example.com", 11),  # no scheme: not linked by Mastodon, counted as typed
        ("hi @alice@example.social", len("hi @alice")),
        ("@alice@example.social.", len("@alice.")),
        ("@alice", 6),
        ("bob@example.com", 15),  # an e-mail address is not a mention
        ("https://example.com/p,@alice@example.org", 23),  # a mention inside a URL
        ("e\u0301", 1),  # graphemes, not code points
        (FAMILY, 1),
    ],
)
def test_mastodon_length(text: str, length: int) -> None:
    assert mastodon_length(text) == length


def test_mastodon_url_length_and_spoiler() -> None:
    assert mastodon_length("https://example.com/long/path", url_length=10) == 10
    assert mastodon_length("a" * 10, spoiler_text="b" * 5) == 15
    # status_length_validator.rb: [spoiler_text, countable_text(text)].join -- only the
    # text has its URLs shortened; the content warning counts as written.
    warning = "cw https://example.com/" + "p" * 50
    assert mastodon_length("x", spoiler_text=warning) == 1 + len(warning)


def test_mastodon_limit() -> None:
    assert MASTODON_DEFAULT_LIMIT == 500
    assert check_length("mastodon", "a" * 500).ok
    assert not check_length("mastodon", "a" * 501).ok
    assert check_length("mastodon", "a" * 495, spoiler_text="b" * 5).ok
    assert not check_length("mastodon", "a" * 495, spoiler_text="b" * 6).ok
    assert check_length("mastodon", "a" * 501, limit=1000).ok
    # 480 characters of text and a URL of any length: 480 + 23 > 500.
    assert not check_length("mastodon", "a" * 480 + " https://example.com/").ok
    assert check_length("mastodon", "a" * 476 + " https://example.com/" + "p" * 400).ok
    assert not check_length("mastodon", "").ok
    check = check_length("mastodon", "\U0001f431" * 3)
    assert (check.length, check.limit, check.unit) == (3, 500, "chars")


# --------------------------------------------------------------------- Bluesky


def test_bluesky_graphemes() -> None:
    assert bluesky_length(FAMILY) == 1
    assert bluesky_length("e\u0301") == 1
    assert bluesky_length("\U0001f1ef\U0001f1f5\U0001f1fa\U0001f1f8") == 2  # two flags
    assert bluesky_length("hello") == 5


def test_bluesky_limit() -> None:
    assert BLUESKY_LIMIT == 300
    assert check_length("bluesky", "a" * 300).ok
    assert not check_length("bluesky", "a" * 301).ok
    assert not check_length("bluesky", "").ok
    check = check_length("bluesky", "\u00e9" * 300)
    assert (check.length, check.limit, check.ok, check.unit) == (300, 300, True, "graphemes")


def test_bluesky_byte_limit() -> None:
    assert BLUESKY_MAX_BYTES == 3000
    assert len(FAMILY.encode("utf-8")) == 25
    fits = check_length("bluesky", FAMILY * 120)  # 120 graphemes, 3000 bytes
    assert (fits.length, fits.ok) == (120, True)
    too_big = check_length("bluesky", FAMILY * 121)  # 121 graphemes, 3025 bytes
    assert (too_big.length, too_big.ok) == (121, False)


# ---------------------------------------------------------------------- checks


def test_check_length_x_and_dryrun() -> None:
    for platform in ("x", "dryrun"):
        check = check_length(platform, "\u3042" * 140)
        assert check == LengthCheck(platform, 280, 280, True, "weighted chars")
        assert not check_length(platform, "\u3042" * 140 + "a").ok
        assert not check_length(platform, "").ok
    assert check_length("x", "a" * 300, limit=300).ok
    assert not check_length("x", "a" * 301, limit=300).ok


def test_check_length_rejects_unknown_platform_and_bad_limit() -> None:
    with pytest.raises(ValueError, match="platform"):
        check_length("myspace", "hi")
    with pytest.raises(ValueError, match="limit"):
        check_length("x", "hi", limit=0)


def test_length_check_as_dict_and_frozen() -> None:
    check = check_length("bluesky", "hi")
    assert check.as_dict() == {"length": 2, "limit": 300, "ok": True}
    with pytest.raises(dataclasses.FrozenInstanceError):
        check.ok = False  # type: ignore[misc]


def test_check_all() -> None:
    results = check_all("a" * 290)
    assert list(results) == ["x", "mastodon", "bluesky"]
    assert {name: check.ok for name, check in results.items()} == {
        "x": False,
        "mastodon": True,
        "bluesky": True,
    }
    assert {name: check.length for name, check in results.items()} == {
        "x": 290,
        "mastodon": 290,
        "bluesky": 290,
    }

    cjk = check_all("\u3042" * 150)
    assert (cjk["x"].length, cjk["x"].ok) == (300, False)
    assert (cjk["mastodon"].length, cjk["mastodon"].ok) == (150, True)
    assert (cjk["bluesky"].length, cjk["bluesky"].ok) == (150, True)

    linked = check_all("read https://example.com/" + "p" * 300)
    assert (linked["x"].length, linked["x"].ok) == (5 + 23, True)
    assert (linked["mastodon"].length, linked["mastodon"].ok) == (5 + 23, True)
    # Bluesky has no link shortening in the text itself: every character counts.
    assert (linked["bluesky"].length, linked["bluesky"].ok) == (325, False)


def test_url_matching_stays_linear() -> None:
    # Restarting the URL matcher at every label of "a.a.a..." once took minutes for
    # 10,000 characters; these run in milliseconds.
    started = time.perf_counter()
    assert x_weighted_length("a." * 5000) == 10000
    assert mastodon_length("a.b-" * 3000) == 12000
    assert x_weighted_length("http://" + "a." * 3000 + "zz") == 6009
    assert time.perf_counter() - started < 5


# ------------------------------------------------------- Mastodon: each rule, sourced
# Mastodon has no library to test against; each rule below names where it comes from.


@pytest.mark.parametrize("text", ["", " ", "\n\n", "\t \r\n", "\u00a0", "\u3000\u2003", "\0"])
def test_mastodon_refuses_a_blank_post(text: str) -> None:
    # Status: validates :text, presence: true (Rails' blank?: only white space), after
    # prepare_contents has stripped it.
    assert mastodon_is_blank(text)
    assert not check_length("mastodon", text).ok
    assert not check_length("mastodon", text, spoiler_text="a warning").ok


def test_mastodon_a_post_with_text_is_not_blank() -> None:
    assert not mastodon_is_blank(" a ")
    assert not mastodon_is_blank("\u200b")  # a zero-width space is no White_Space
    assert check_length("mastodon", "\u200b").ok


def test_mastodon_strips_leading_and_trailing_white_space_first() -> None:
    # Status#prepare_contents: text&.strip!, spoiler_text&.strip! (Ruby's strip: NUL,
    # \t \n \v \f \r and space; not Unicode spaces).
    assert mastodon_length("  hello \n\n") == 5
    assert mastodon_length("\t\0hello\0") == 5
    assert mastodon_length("\u00a0hello\u00a0") == 7
    assert mastodon_length("x", spoiler_text="  cw  ") == 3
    assert check_length("mastodon", " " * 10 + "a" * 500 + "\n" * 10).ok


@pytest.mark.parametrize("scheme", ["http", "https", "HTTPS", "dat", "dweb", "ipfs", "ipns", "ssb",
                                    "gopher", "gemini"])
def test_mastodon_counts_23_for_every_scheme_of_its_url_pattern(scheme: str) -> None:
    # config/initializers/twitter_regex.rb: (?:https?|dat|dweb|ipfs|ipns|ssb|gopher|gemini)://
    assert mastodon_length(f"see {scheme}://example.com/{'a' * 60}") == 4 + 23


def test_mastodon_links_only_urls_with_a_scheme() -> None:
    # StatusLengthValidator: extract_urls_with_indices(str, extract_url_without_protocol: false)
    assert mastodon_length("example.com/" + "a" * 40) == 12 + 40
    assert mastodon_length("ftp://example.com/" + "a" * 40) == 18 + 40
    assert mastodon_length("https://example.invalidtld/" + "a" * 40) == 27 + 40  # no such TLD


def test_mastodon_url_paths_take_what_its_pattern_takes() -> None:
    # twitter_regex.rb: path characters are anything but white space and <>()?; the
    # path ends on a character that is not punctuation, or on balanced parentheses.
    assert mastodon_length("https://example.com/wiki/Caf\u00e9_\u6771\u4eac~x") == 23
    assert mastodon_length("https://example.com/a.") == 23 + 1  # a final full stop is not
    assert mastodon_length("(https://example.com/a)") == 1 + 23 + 1
    assert mastodon_length("https://example.com/Foo_(bar)") == 23
    assert mastodon_length("https://example.com/a<b") == 23 + 2
    # ... and a query may hold non-ASCII letters
    assert mastodon_length("https://example.com/?q=\u00e9t\u00e9") == 23


def test_mastodon_hosts_must_pass_idna_2003() -> None:
    # twitter-text's is_valid_domain (IDN::Idna.toASCII, libidn): a label that mixes
    # left-to-right and Arabic letters fails, so the URL is not linked.
    assert mastodon_length("http://a\u0644.de/x") == len("http://a\u0644.de/x")
    assert mastodon_length("http://b\u00fccher.de/" + "x" * 30) == 23


@pytest.mark.parametrize(
    ("text", "length"),
    [
        ("@alice@example.social", len("@alice")),
        ("@alice@example.social@", len("@alice@example.social@")),  # followed by "@"
        ("@alice@example.social://x", len("@alice@example.social://x")),  # ... by "://"
        ("@alice\u00e9@example.social", len("@alice\u00e9@example.social")),  # ... by an accent
        ("@alice@example.social.", len("@alice.")),
        ("mail bob@example.com", len("mail bob@example.com")),  # after a word character
        ("a=@alice@example.social", len("a=@alice@example.social")),  # after "="
        ("@alice@" + "d" * 246 + ".social", len("@alice")),  # a domain of 253
        ("@alice@" + "d" * 247 + ".social", 7 + 247 + 7),  # ... of 254: no mention
    ],
)
def test_mastodon_mentions(text: str, length: int) -> None:
    # Account::MENTION_RE, Extractor#extract_mentions_or_lists_with_indices and
    # twitter-text's end_mention_match; a mention counts as "@user".
    assert mastodon_length(text) == length


def test_mastodon_overlapping_entities_keep_the_first() -> None:
    # twitter-text's remove_overlapping_entities: the URL comes first here.
    assert mastodon_length("https://example.com/@alice@example.org") == 23


# ------------------------------------------------- the assumption behind the TLD trees


def test_longest_tld_first_is_twitter_text_order() -> None:
    # content/rules/x.py tries the longest fitting TLD first where twitter-text tries
    # them in list order.  That is the same only while no TLD that is a prefix of a
    # later-tried one can end where the TLD look-ahead lets it stop.
    order = [*x_data.GTLDS, *x_data.CCTLDS]
    rank = {name.upper(): index for index, name in enumerate(order)}
    clashes = [
        (short, long)
        for short in rank
        for long in rank
        if len(long) > len(short) and long.startswith(short)
        and not long[len(short)].isascii() and rank[short] < rank[long]
    ]
    assert clashes == []



def test_every_tld_starts_with_a_word_character() -> None:
    # content/rules/x.py turns a text away before compiling the TLD patterns when no dot
    # in it is followed by a word character (`\w`): every TLD, folded, must start with one.
    import re

    from content.rules import x
    first = {x._fold(name)[0] for name in (*x_data.GTLDS, *x_data.CCTLDS)} | {"X"}  # XN--
    assert [c for c in first if not re.match(r"\w", c)] == []
    # and a dot before a non-word character still ends a sentence, not a link
    assert x_weighted_length("the end. \"yes.\" (no.)") == len("the end. \"yes.\" (no.)")

def test_bluesky_breaks_a_virama_with_no_consonant_before_it() -> None:
    # ICU (and UAX #29 rule GB9c): a virama only joins consonant to consonant.
    assert bluesky_length("\u094d\u0915") == 2
    assert bluesky_length("\u0915\u093e\u094d\u0915") == 2
    assert bluesky_length("\u0915\u094d\u0937") == 1


def test_every_tld_begins_with_a_letter() -> None:
    # content/rules/x.py weighs ASCII text with no "." before an ASCII letter without
    # looking for URLs: that holds only while no TLD (nor punycode's "xn--") begins
    # with an ASCII digit, hyphen or other punctuation.
    assert [name for name in (*x_data.GTLDS, *x_data.CCTLDS)
            if name[0].isascii() and not name[0].isalpha()] == []


@pytest.mark.parametrize("text", [
    "Call 202-555-0100 today. #Bench",       # dots, none before a letter: the shortcut
    "see example.com today",                 # a bare domain: 23
    "v1.2 and 3.14 then a.b.c",              # dots before digits and an unknown TLD
    "ends with a dot.", "HTTPS://EXAMPLE.ORG/x.", "x.CO", "..org", "a.XN--P1AI b",
])
def test_ascii_shortcut_gives_the_full_count(text: str) -> None:
    # the shortcut must give what the URL search gives: weigh each text both ways
    from content.rules import x as xrule
    full = xrule._weighted_units("\u00e9 " + text, xrule.X_CONFIG) - 200   # "é ": no shortcut
    assert xrule._weighted_units(text, xrule.X_CONFIG) == full
