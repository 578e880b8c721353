"""A seeded stress corpus for the length rules: texts shaped where counting goes wrong.

``corpus(seed)`` returns the same few thousand texts for the same seed.  They are made
at test time (never committed) and their lengths are compared with the reference
implementations (tests/test_lengths_reference.py).  Each shape is one small function
returning one text; the shapes are the ones that broke tminus's counting before
(issue 11): URLs of every form and what stands next to them, mentions, hashtags and
cashtags, emoji of every kind (and broken ones), scripts that X weighs differently or
that segment into graphemes in unusual ways, zero-width and directional characters,
lengths at every limit, and realistic campaign posts.
"""

from __future__ import annotations

import random
import unicodedata
from collections.abc import Callable, Sequence

from content.rules import x_data

Shape = Callable[[random.Random], str]

# -------------------------------------------------------------------- building blocks

ASCII_WORDS = ("act", "now", "vote", "call", "your", "senator", "today", "deadline",
               "petition", "sign", "share", "rally", "march", "4", "days", "left", "A", "OK")
CJK = "投票締切まであと日本語中文字한국어행동"
ARABIC = "صوتواالآنقبلالموعدالنهائي"
HEBREW = "הצביעועכשיו"
DEVANAGARI = "अभीवोटकरें"
CYRILLIC = "голосуйтесейчасДА"
GREEK = "ψηφίστεΤώρα"
THAI = "ลงคะแนนวันนี้"
ACCENTED = "éèêëàâäîïôöùûüçñÉÀÇ"
SCRIPTS = (CJK, ARABIC, HEBREW, DEVANAGARI, CYRILLIC, GREEK, THAI, ACCENTED)

# Characters that sit at the edges of twitter-text's URL grammar.
ZERO_WIDTH = ("\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad")
DIRECTIONAL = ("\u200e", "\u200f", "\u061c", "\u202a", "\u202b", "\u202c", "\u202d",
               "\u202e", "\u2066", "\u2067", "\u2068", "\u2069")
INVALID = ("\ufffe", "\uffff", "\ufeff")
SPACES = (" ", "\n", "\t", "\r\n", "\u00a0", "\u3000", "\u2003", "\u202f", "\u2028")
PUNCTUATION = (*tuple(".,;:!?)('\"]}>-_/@#$%&*+=~|`^"), "...", "…", "。", "、", "」", "！")
NEIGHBOURS = (*SPACES, *PUNCTUATION, "国", "日本", "é", "ж", "😀", "🇯🇵", "❤️", "#", "@",
              "＃", "＠", "$", "a", "Z", "9", "\u0301", *ZERO_WIDTH, *DIRECTIONAL)

EMOJI = sorted(x_data.EMOJI | x_data.EMOJI_UNLESS_FE0E)  # sorted: sets have no fixed order

SCHEMES = ("http://", "https://", "HTTP://", "Https://", "", "", "", "ftp://",
           "gemini://", "dat://", "ipfs://", "www.")
NOT_TLDS = ("invalid", "md", "js", "py", "txt", "exe", "local", "xx", "c", "comx",
            "co1", "music", "123", "e")
IDN_LABELS = ("中国", "日本語", "ไทย", "рф", "пример", "例え", "ง", "ل", "مثال", "δοκιμή",
              "bücher", "müller", "😀", "☃", "ü", "é", "国", "a。b", "x\uff0ey", "ı", "ſ", "K",
              'a"b', "a`b", "a\x01b", "a\x7fb", "ß", "ǅ", "ι", "\u0345", "😀" * 20)


def pick(rng: random.Random, items: Sequence[str]) -> str:
    return items[rng.randrange(len(items))]


def word(rng: random.Random) -> str:
    if rng.random() < 0.75:
        return pick(rng, ASCII_WORDS)
    script = pick(rng, SCRIPTS)
    start = rng.randrange(len(script))
    return script[start:start + rng.randint(1, 6)]


def label(rng: random.Random) -> str:
    roll = rng.random()
    if roll < 0.55:
        return "".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789")
                       for _ in range(rng.randint(1, 12)))
    if roll < 0.65:
        return pick(rng, ("my-site", "my_site", "-lead", "trail-", "a--b", "_x", "x_",
                          "ACT", "Act-Now", "www", "m", "en", "t"))
    if roll < 0.8:
        return pick(rng, IDN_LABELS)
    if roll < 0.85:
        return "xn--" + "".join(rng.choice("abcdefghij0123456789-") for _ in range(rng.randint(1, 8)))
    if roll < 0.9:
        return "a" * rng.choice((61, 62, 63, 64, 65))  # a DNS label's 63-byte limit
    return pick(rng, ASCII_WORDS) + pick(rng, ("", "-", "_")) + pick(rng, IDN_LABELS)


def tld(rng: random.Random) -> str:
    roll = rng.random()
    if roll < 0.45:
        chosen = pick(rng, x_data.GTLDS)
    elif roll < 0.85:
        chosen = pick(rng, x_data.CCTLDS)
    elif roll < 0.92:
        chosen = pick(rng, NOT_TLDS)
    else:
        chosen = "xn--" + "".join(rng.choice("abcdefghij0123456789") for _ in range(rng.randint(2, 8)))
    case = rng.random()
    if case < 0.1:
        return chosen.upper()
    if case < 0.15:
        return chosen.title()
    return chosen


def host(rng: random.Random) -> str:
    labels = [label(rng) for _ in range(rng.choice((1, 1, 1, 2, 2, 3, 5)))]
    return ".".join([*labels, tld(rng)])


def path(rng: random.Random) -> str:
    roll = rng.random()
    if roll < 0.3:
        return ""
    pieces = ["/"]
    for _ in range(rng.randint(0, 4)):
        pieces.append(pick(rng, (
            "a", "petition", "sign-now", "2017", "index.html", "wiki/Foo_(bar)",
            "Foo_(bar_(baz))", "(x)", "(", ")", "x(y", "~user", "%E2%9C%93", "é", "ж",
            "a,b", "a.b.", "=", "+", "#frag", "#", "@user", "@user/", "!", "*", "'", ";",
            ":", "$", "|", "&", "[x]", "–", "—", "国", "😀", "\u0301", "ⱥ", "ſ", "K", "ι",
            "Ι", "ͅ", "ẞ", "ǅ", "ı", "ÿ", "Ÿ", "ꙋ", "ᲀ", "\u0400", "Ӂ", "a" * 60)))
        if rng.random() < 0.5:
            pieces.append("/")
    return "".join(pieces)


def query(rng: random.Random) -> str:
    roll = rng.random()
    if roll < 0.6:
        return ""
    return "?" + "".join(pick(rng, ("src=tw", "&", "a=1", "b", "=", "%20", "!", "?", "(",
                                     ")", ".", ",", "@", "~", "|", "é", "#x", "-", "_", "/"))
                         for _ in range(rng.randint(0, 5)))


def url(rng: random.Random) -> str:
    port = f":{rng.choice((80, 8080, 443, 1))}" if rng.random() < 0.15 else ""
    fragment = pick(rng, ("#top", "#", "#é")) if rng.random() < 0.1 else ""
    return pick(rng, SCHEMES) + host(rng) + port + path(rng) + query(rng) + fragment


def emoji(rng: random.Random) -> str:
    """One emoji the reference knows, or one made to look like one."""
    roll = rng.random()
    if roll < 0.55:
        return pick(rng, EMOJI)
    if roll < 0.6:
        return pick(rng, EMOJI) + "\ufe0f"
    if roll < 0.65:
        return pick(rng, EMOJI) + "\ufe0e"
    if roll < 0.7:  # ZWJ chains of anything
        return "\u200d".join(pick(rng, ("❤", "❤️", "🔥", "👨", "👩", "👧", "🏳️", "🌈", "a", "♀", "♀️",
                                        "🧑", "🤝", "🫱", "🫲")) for _ in range(rng.randint(2, 4)))
    if roll < 0.75:  # skin tones after bases and non-bases
        return pick(rng, ("👍", "♀", "a", "❤", "🫱", "🫲", "✋", "☝", "🏃")) + pick(
            rng, ("\U0001f3fb", "\U0001f3fc", "\U0001f3fd", "\U0001f3fe", "\U0001f3ff"))
    if roll < 0.8:  # regional indicators, flags or not
        return "".join(chr(0x1F1E6 + rng.randrange(26)) for _ in range(rng.randint(1, 3)))
    if roll < 0.85:  # tag sequences, known and unknown
        tags = "".join(chr(0xE0061 + rng.randrange(26)) for _ in range(rng.randint(2, 6)))
        return "\U0001f3f4" + pick(rng, ("\U000e0067\U000e0062\U000e0065\U000e006e\U000e0067", tags)) + "\U000e007f"
    if roll < 0.9:  # keycaps and their broken forms
        return pick(rng, "#*0123456789") + pick(rng, ("\ufe0f\u20e3", "\u20e3", "\ufe0f", "\ufe0e\u20e3"))
    # Newer than twemoji-parser 11.0.2's data, or text-default symbols.
    return pick(rng, ("🫱🏻", "❤️‍🔥", "🫠", "🥹", "🪿", "🩷", "🧑‍🧑‍🧒", "🐦‍🔥", "⏳️", "⏳", "©", "®",
                      "©️", "™️", "‼", "↔️", "☺", "☺︎", "♟", "♟️", "🈁", "🅰", "🅰️", "️", "︎"))


def glue(rng: random.Random, parts: list[str]) -> str:
    out = []
    for part in parts:
        out.append(part)
        out.append(pick(rng, NEIGHBOURS) if rng.random() < 0.35 else " ")
    return "".join(out[:-1])


# ------------------------------------------------------------------------------ shapes


def urls_in_text(rng: random.Random) -> str:
    parts = [url(rng) if rng.random() < 0.5 else word(rng) for _ in range(rng.randint(1, 6))]
    return glue(rng, parts)


def url_next_to(rng: random.Random) -> str:
    return pick(rng, NEIGHBOURS) + url(rng) + pick(rng, NEIGHBOURS) + pick(rng, ("", word(rng)))


def bare_domain(rng: random.Random) -> str:
    # "act.org?src=tw", "a.io", "foo.jp" at the end, before a newline, next to CJK.
    domain = label(rng) + "." + tld(rng)
    return pick(rng, ("", "see ", "国", "\n", "(", "Sign: ")) + domain + pick(
        rng, ("", "\n", "?src=tw", ":8080", ":8080/x", "/", ".", ")", "国", " now", "#tag"))


def tco(rng: random.Random) -> str:
    slug = "".join(rng.choice("abcXYZ019") for _ in range(rng.choice((1, 10, 39, 40, 41, 45))))
    return pick(rng, ("https://t.co/", "http://t.co/", "HTTPS://T.CO/")) + slug + pick(
        rng, ("", "/more", "?amp=1", "?", "#x", ".", "é"))


def surrogate_edge(rng: random.Random) -> str:
    # twitter-text matches UTF-16 code units: a domain may start on the second half of
    # an emoji, which changes its first label's encoded length near 63.
    before = pick(rng, ("#", "@", "$", "a", "", " ", "x"))
    astral = pick(rng, ("😀", "𝐀", "🇯🇵", "\U00020000", "👍🏽"))
    body = "b" * rng.randint(50, 64)
    return before + astral + body + "." + pick(rng, ("com", "jp", "co", "中国")) + pick(rng, ("", "/x", "?q=1"))


def long_url(rng: random.Random) -> str:
    # Around twitter-text's 4096-character URL cap (counted with scheme and punycode).
    size = rng.choice((4070, 4080, 4087, 4088, 4089, 4090, 4100))
    stem = pick(rng, ("https://example.com/", "example.com/", "http://bücher.de/", "http://中国.cn/"))
    return "x " + stem + "a" * (size - len(stem))


def entities(rng: random.Random) -> str:
    parts = []
    for _ in range(rng.randint(1, 6)):
        parts.append(pick(rng, (
            "@alice", "@alice@example.social", "@bob_1@mastodon.online.", "@x@y@z",
            "@u@d://x", "@u@d@", "@u@dé", "＠alice", "email@example.com", "RT @alice:",
            "#POTUSpardon", "#HereToStay", "＃1.ORG", "#tag.com", "#1", "$AAPL", "$AAPL.com",
            "$A.b", "#️⃣", "@alice.example.com", "@a/list", "https://example.com/@alice@example.org",
            "@alice@例え.jp", "@" + "a" * 30, "#" + "é" * 5)))
    return glue(rng, parts)


def emoji_run(rng: random.Random) -> str:
    parts = [emoji(rng) if rng.random() < 0.7 else word(rng) for _ in range(rng.randint(1, 8))]
    return "".join(parts) if rng.random() < 0.5 else glue(rng, parts)


def scripts_mix(rng: random.Random) -> str:
    parts = []
    for _ in range(rng.randint(1, 8)):
        roll = rng.random()
        if roll < 0.5:
            parts.append(word(rng))
        elif roll < 0.65:
            parts.append(pick(rng, ("e\u0301", "a\u0308\u0304", "\u1100\u1161\u11a8", "\u0915\u094d\u0937",
                                    "\u0915\u093e\u094d\u0915", "\u094d\u0915", "a\u094d\u0915",
                                    "\u0915\u094d\u094d\u0915", "\u0995\u09cd\u09b7", "\u0b95\u0bcd\u0bb7",
                                    "\u0d15\u0d4d\u200d", "\u0e01\u0e33", "\u0644\u0627", "\u05e9\u05c1",
                                    "\u200d", "\u0301", "\u0904\u094d", "ि", "क़", "\u0958")))
        elif roll < 0.8:
            parts.append(pick(rng, (*ZERO_WIDTH, *DIRECTIONAL, *INVALID)))
        else:
            form = pick(rng, ("NFC", "NFD", "NFKC", "NFKD"))
            parts.append(unicodedata.normalize(form, pick(rng, ("café", "Ångström", "ﬁ", "①", "한국어",
                                                               "が", "ǅ", "Ω", "ḱṷ", "\u212b"))))
    return glue(rng, parts)


def near_limit(rng: random.Random) -> str:
    # Just under, at and over 280 weighted characters (X), 300 graphemes (Bluesky).
    unit, weight = pick(rng, (("a", 1), ("日", 2), ("😀", 2), ("é", 1), ("e\u0301", 1)))
    target = rng.choice((139, 140, 141, 279, 280, 281, 299, 300, 301))
    count = target // weight
    body = unit * count
    if rng.random() < 0.5:
        body = body[: max(0, len(body) - 23 * len(unit))] + " " + url(rng)
    return body


def campaign_post(rng: random.Random) -> str:
    days = rng.randint(0, 10)
    first = pick(rng, (f"{days} days. 1 action.", f"T-{days}h:", "LAST CALL", "⏳ Only hours left",
                       "Quedan pocos días", f"{days} jours.", "あと3日", "📣"))
    middle = pick(rng, (
        "Call your senator at 202-456-1111 and ask for a categorical pardon.",
        "Sign the petition: act.org/pardon?src=tw",
        "Read why: https://www.example.org/2017/01/why-it-matters/ (thread 🧵)",
        "Llama hoy a tu senador: 202-456-1111 — https://ejemplo.org/firma",
        "Join us on Mastodon @campaign@mastodon.social and Bluesky @campaign.bsky.social",
        "Donate $5 → donate.example.org/give?amount=5&utm_source=twitter.",
        "Share this: bit.ly/3xYzAbC — every retweet counts!",
    ))
    tags = " ".join(pick(rng, ("#POTUSpardon", "#HereToStay", "#ActNow", "#VoteToday", "#国", "$TSLA"))
                    for _ in range(rng.randint(0, 3)))
    return "\n\n".join(p for p in (first, middle, tags) if p) + pick(rng, ("", " ", "\n", "🇺🇸", " 🗳️"))


SHAPES: tuple[tuple[Shape, int], ...] = (
    (urls_in_text, 1400),
    (url_next_to, 700),
    (bare_domain, 700),
    (tco, 100),
    (long_url, 40),
    (surrogate_edge, 150),
    (entities, 500),
    (emoji_run, 900),
    (scripts_mix, 700),
    (near_limit, 250),
    (campaign_post, 500),
)

# The examples of issue 11, each once: the causes it found.
ISSUE_EXAMPLES = (
    "a.io", "see foo.jp", "it.so\nnext", "0.中国", "ok.google", "C.商店", "x.music",
    "act.org?src=tw", "www.my_site.example.com/a", "HTTP://0.ง.jp", "http://aل.de",
    "❤\u200d❤", "⏳️", "♀🏻", "🇽🇽", "🏴\U000e0078\U000e0079\U000e007f", "🫱🏻", "❤️‍🔥",
    "国.b.org", "/çn.tv", "＃1.ORG", "", " ", "\n", "\u094d\u0915",
)


def corpus(seed: int = 11) -> list[str]:
    """The issue's examples and a few thousand generated texts, the same for one seed."""
    rng = random.Random(seed)
    texts = list(ISSUE_EXAMPLES)
    for shape, count in SHAPES:
        texts.extend(shape(rng) for _ in range(count))
    return texts
