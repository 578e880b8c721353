"""The platform registry: everything tminus knows about each platform, in one entry.

An entry (`Platform`) holds the platform's length rule, its tiers with their rate
budgets, its credential variables, its media limits, the post options it sends and
the import path of its adapter class. Every figure is given with its source.

Adding a platform means adding one entry to `PLATFORMS` below (and its credentials
class) and one adapter module under `jobs/adapters/`; campaign validation, length
checks, rate budgets, credentials, `accounts check` and the docs test read it here.

The registry lives in `content` because `content/campaign.py` validates `platform` and
`tier` against it and `content` imports nothing of ours; `jobs` and `scheduler` import
it from here (the layers run `scheduler -> jobs -> content`). So the adapter is named
by import path, "package.module:Class", and imported only when an account needs it:
each adapter pulls in its SDK.

The registry is validated when this module is imported: a platform without tiers, a
tier without a budget, a default tier that is not one of its tiers, an unknown post
option or a malformed adapter path is a `RegistryError` at start-up, never "no limit".

The length rules themselves (`content.rules`: X's character data, the regexes) are named
here, not imported: the daemon reads this registry for budgets, credentials and
adapters but never measures a post, and importing them cost its process 3.4 MB (issue
12). They are imported when a length is first checked (the planner, previews, checks).
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from types import MappingProxyType, ModuleType
from typing import TYPE_CHECKING, Any, cast

from content.errors import TminusError

if TYPE_CHECKING:
    from content.rules import LengthCheck


class RegistryError(Exception):
    """The registry itself is wrong: a programming error, found at import."""


class UnknownPlatform(TminusError, ValueError):
    """A platform name the registry does not know. A `TminusError` for the user who
    wrote it in a file, a `ValueError` for code that passed it."""


# -- the parts of an entry ---------------------------------------------------------------


@dataclass(frozen=True)
class RateBudget:
    """At most `posts` per rolling `window` for one account."""

    posts: int
    window: timedelta

    def __post_init__(self) -> None:
        if self.posts < 1 or self.window <= timedelta(0):
            raise ValueError("a budget needs posts ≥ 1 and a positive window")


@dataclass(frozen=True)
class Tier:
    """A level of API access with its own rate budgets (all apply at once)."""

    name: str
    budgets: tuple[RateBudget, ...]
    source: str


@dataclass(frozen=True)
class LengthRule:
    """How a platform measures a post and how much it takes. `counter` and `acceptor`
    name functions of `content.rules`, `count(text, content warning)` and
    `accepts(text)`, imported on first use (see the module's docstring)."""

    counter: str
    limit: int                    # the default; a Mastodon instance sets its own
    unit: str
    acceptor: str
    source: str

    # looked up once per rule (cached on the instance): every planned post is measured
    @functools.cached_property
    def count(self) -> Callable[[str, str], int]:
        return cast("Callable[[str, str], int]", getattr(_rules(), self.counter))

    @functools.cached_property
    def accepts(self) -> Callable[[str], bool]:
        return cast("Callable[[str], bool]", getattr(_rules(), self.acceptor))


def _rules() -> ModuleType:
    from content import rules
    return rules


@dataclass(frozen=True)
class MediaLimits:
    """Images per post, bytes per image, accepted MIME types, alt text length."""

    max_count: int
    max_bytes: int
    types: frozenset[str]
    max_alt: int
    source: str


@dataclass(frozen=True)
class CredentialVar:
    """One environment variable of an account: TMINUS_<PREFIX>_<suffix>."""

    suffix: str
    help: str
    required: bool

    def variable(self, prefix: str) -> str:
        return f"TMINUS_{prefix}_{self.suffix}"


def secret(help: str) -> Any:
    """A required credential field, with the help text shown when it is missing."""
    return field(metadata={"help": help})


def optional(help: str) -> Any:
    """An optional credential field (None when its variable is unset)."""
    return field(default=None, metadata={"help": help})


@dataclass(frozen=True, repr=False)
class Credentials:
    """Base of each platform's credentials: a frozen dataclass whose field `api_key`
    is read from TMINUS_<PREFIX>_API_KEY. Never printed: the repr names the fields
    that are set, not their values."""

    @classmethod
    def variables(cls) -> tuple[CredentialVar, ...]:
        return tuple(CredentialVar(f.name.upper(), str(f.metadata.get("help", "")),
                                   f.default is dataclasses.MISSING)
                     for f in dataclasses.fields(cls))

    def missing(self) -> list[str]:
        """The required variables (suffixes) left empty."""
        return [v.suffix for v in self.variables()
                if v.required and not str(getattr(self, v.suffix.lower()) or "").strip()]

    def __repr__(self) -> str:
        shown = [f"{f.name}=<set>" for f in dataclasses.fields(self) if getattr(self, f.name)]
        return f"{type(self).__name__}({', '.join(shown)})"


@dataclass(frozen=True, repr=False)
class XCredentials(Credentials):
    api_key: str = secret("the app's API key (OAuth 1.0a consumer key)")
    api_secret: str = secret("the app's API key secret (consumer secret)")
    access_token: str = secret("the account's access token (read and write)")
    access_secret: str = secret("the account's access token secret")
    api_base: str | None = optional("base URL replacing https://api.twitter.com "
                                    "(tests, a fake server)")


@dataclass(frozen=True, repr=False)
class MastodonCredentials(Credentials):
    instance: str = secret("base URL of the Mastodon server, e.g. https://mastodon.social")
    access_token: str = secret("access token (scopes write:statuses write:media "
                               "read:accounts read:statuses)")


@dataclass(frozen=True, repr=False)
class BlueskyCredentials(Credentials):
    handle: str = secret("the account's handle, e.g. campaign.bsky.social")
    app_password: str = secret("an app password (Settings > Privacy and security > "
                               "App passwords)")
    pds: str | None = optional("base URL of the account's PDS (default https://bsky.social; "
                               "tests: a fake server)")


@dataclass(frozen=True, repr=False)
class DryRunCredentials(Credentials):
    """The dry run needs none: nothing leaves the machine."""


OPTIONS = frozenset({"language", "visibility", "content_warning"})
_ADAPTER_PATH = re.compile(r"^[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)+:[A-Z][A-Za-z0-9]*$")


@dataclass(frozen=True)
class Platform:
    """One platform: its rules, limits, credentials and adapter."""

    name: str
    title: str
    length: LengthRule
    tiers: tuple[Tier, ...]
    default_tier: str
    credentials: type[Credentials]
    media: MediaLimits
    options: frozenset[str]       # the post options its adapter sends
    adapter: str                  # "package.module:Class", imported on first use

    @property
    def tier_names(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.tiers)

    def tier(self, name: str | None) -> Tier:
        """The tier called `name`; the default tier for None or a name it does not know
        (an account row from an older registry): never no budget at all."""
        for t in self.tiers:
            if t.name == name:
                return t
        return next(t for t in self.tiers if t.name == self.default_tier)

    def check_length(self, text: str, *, limit: int | None = None,
                     content_warning: str = "") -> LengthCheck:
        """`text` against this platform's rule; `limit` overrides the default."""
        if limit is not None and limit < 1:
            raise ValueError(f"limit must be positive, got {limit}")
        # imported on first use: see the module's docstring
        from content.rules import LengthCheck
        rule = self.length
        length = rule.count(text, content_warning)
        limit = rule.limit if limit is None else limit
        ok = 0 < length <= limit and rule.accepts(text)
        return LengthCheck(self.name, length, limit, ok, rule.unit)


# -- the entries ---------------------------------------------------------------------------

_IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})

# The limits are the rules' own constants, written out (tests/test_platforms.py checks
# they agree): X_LIMIT, MASTODON_DEFAULT_LIMIT, BLUESKY_LIMIT.
X_RULE = LengthRule(
    "x_post_length", 280, "weighted chars", "x_accepts",
    source="twitter-text v3 (configs/v3.json): weighted 280, each URL 23")

_X = Platform(
    name="x", title="X", length=X_RULE,
    tiers=(
        # POST /2/tweets per-user limits, docs.x.com "Rate limits" (X API v2), as
        # checked in late 2026: Free 17 / 24 h, Basic 100 / 24 h, Pro 100 / 15 min.
        Tier("free", (RateBudget(17, timedelta(hours=24)),),
             "docs.x.com rate limits, POST /2/tweets, Free: 17 per 24 h per user"),
        Tier("basic", (RateBudget(100, timedelta(hours=24)),),
             "docs.x.com rate limits, POST /2/tweets, Basic: 100 per 24 h per user"),
        Tier("pro", (RateBudget(100, timedelta(minutes=15)),),
             "docs.x.com rate limits, POST /2/tweets, Pro: 100 per 15 min per user"),
    ),
    default_tier="free",          # the strictest: a campaign that says nothing is safe
    credentials=XCredentials,
    media=MediaLimits(
        max_count=4, max_bytes=5 * 1024 * 1024, types=_IMAGE_TYPES, max_alt=1000,
        source="docs.x.com/x-api/media: images 5 MB, up to 4 photos per post (media "
               "best practices), JPG/PNG/GIF/WEBP; POST /2/media/metadata alt_text "
               "at most 1,000 characters"),
    options=frozenset(),          # X detects the language; it has no visibility or CW
    adapter="jobs.adapters.x:XPublisher",
)

_MASTODON = Platform(
    name="mastodon", title="Mastodon",
    length=LengthRule(
        "mastodon_post_length", 500, "chars", "mastodon_accepts",
        source="Mastodon StatusLengthValidator: 500 graphemes of content warning + "
               "text by default (each instance sets its own), URLs 23"),
    tiers=(Tier("default", (RateBudget(300, timedelta(minutes=5)),),
                "docs.joinmastodon.org/api/rate-limits: 300 requests per 5 min per token"),),
    default_tier="default",
    credentials=MastodonCredentials,
    media=MediaLimits(
        max_count=4, max_bytes=16 * 1024 * 1024, types=_IMAGE_TYPES, max_alt=1500,
        source="docs.joinmastodon.org/user/posting#media: 4 attachments, images 16 MB "
               "(Mastodon ≥ 4.2), PNG/JPEG/GIF/WebP (also HEIC/HEIF/AVIF); "
               "MediaAttachment::MAX_DESCRIPTION_LENGTH 1,500"),
    options=frozenset({"language", "visibility", "content_warning"}),
    adapter="jobs.adapters.mastodon:MastodonPublisher",
)

_BLUESKY = Platform(
    name="bluesky", title="Bluesky",
    length=LengthRule(
        "bluesky_post_length", 300, "graphemes", "bluesky_accepts",
        source="app.bsky.feed.post lexicon: text maxGraphemes 300, maxLength 3000 bytes"),
    tiers=(Tier("default", (RateBudget(1666, timedelta(hours=1)),
                            RateBudget(11666, timedelta(hours=24))),
                "docs.bsky.app/docs/advanced-guides/rate-limits: a create costs 3 points, "
                "5,000 points per hour and 35,000 per day per account"),),
    default_tier="default",
    credentials=BlueskyCredentials,
    media=MediaLimits(
        max_count=4, max_bytes=1_000_000, types=_IMAGE_TYPES, max_alt=2000,
        source="app.bsky.embed.images lexicon: 4 images, maxSize 1,000,000 bytes, "
               "accept image/*; alt: the Bluesky app's MAX_ALT_TEXT, 2,000 graphemes "
               "(bluesky-social/social-app src/lib/constants.ts)"),
    # Bluesky has no visibility; only a content warning that names a self-label is sent
    options=frozenset({"language", "content_warning"}),
    adapter="jobs.adapters.bluesky:BlueskyPublisher",
)

_DRYRUN = Platform(
    name="dryrun", title="dry run",
    length=dataclasses.replace(X_RULE, source="X's rule, the strictest of the three: a "
                                              "dry-run post would fit anywhere"),
    # Nothing leaves the machine, but every post is a line in the outbox. 1,000 a minute
    # per account is beyond any campaign (ten times X Pro's per-user rate, per minute)
    # and keeps a runaway schedule from writing an outbox without end.
    tiers=(Tier("default", (RateBudget(1000, timedelta(minutes=1)),),
                "tminus's own bound for the local outbox"),),
    default_tier="default",
    credentials=DryRunCredentials,
    media=dataclasses.replace(_BLUESKY.media, max_alt=1000,
                              source="the smallest of the three platforms' limits"),
    options=frozenset(),          # written to the outbox as given, sent nowhere
    adapter="jobs.adapters.dryrun:DryRunPublisher",
)


def validate(entries: Iterable[Platform]) -> Mapping[str, Platform]:
    """The registry as a read-only mapping by name, or a `RegistryError` naming the
    first thing wrong with it."""
    out: dict[str, Platform] = {}
    for p in entries:
        where = f"platform registry: {p.name!r}"
        if p.name in out:
            raise RegistryError(f"{where} is registered twice")
        if not p.tiers:
            raise RegistryError(f"{where} has no tiers, so no rate budget")
        for t in p.tiers:
            if not t.budgets:
                raise RegistryError(f"{where} tier {t.name!r} has no rate budget")
        if p.default_tier not in p.tier_names:
            raise RegistryError(f"{where} default tier {p.default_tier!r} is not one of "
                                f"{', '.join(p.tier_names)}")
        if not p.options <= OPTIONS:
            raise RegistryError(f"{where} sends unknown options "
                                f"{', '.join(sorted(p.options - OPTIONS))}")
        if not _ADAPTER_PATH.match(p.adapter):
            raise RegistryError(f"{where} adapter {p.adapter!r} is not 'package.module:Class'")
        if p.length.limit < 1 or p.media.max_count < 0 or p.media.max_bytes < 1:
            raise RegistryError(f"{where} has a limit below 1")
        if not (isinstance(p.credentials, type) and issubclass(p.credentials, Credentials)
                and dataclasses.is_dataclass(p.credentials)):
            raise RegistryError(f"{where} credentials must be a Credentials dataclass")
        out[p.name] = p
    return MappingProxyType(out)


PLATFORMS: Mapping[str, Platform] = validate([_X, _MASTODON, _BLUESKY, _DRYRUN])


def platform(name: str) -> Platform:
    """The registry entry of `name`, or `UnknownPlatform` naming the known ones."""
    try:
        return PLATFORMS[name]
    except KeyError:
        raise UnknownPlatform(f"unknown platform {name!r}; expected one of "
                              f"{', '.join(PLATFORMS)}") from None


def check_length(platform_name: str, text: str, *, limit: int | None = None,
                 spoiler_text: str = "") -> LengthCheck:
    """Check `text` against `platform_name`'s rule; `limit` overrides its default.

    `ok` needs 0 < length <= limit and whatever else the platform demands (X: none of
    the characters it rejects; Bluesky: at most 3000 UTF-8 bytes). `spoiler_text` (a
    content warning) counts only where the platform counts it (Mastodon)."""
    return platform(platform_name).check_length(text, limit=limit,
                                                content_warning=spoiler_text)


def check_all(text: str) -> dict[str, LengthCheck]:
    """`text` against the default limit of every real platform (not the dry run)."""
    return {name: check_length(name, text) for name in PLATFORMS if name != "dryrun"}
