"""Rendering post text: one sandboxed Jinja2 environment per campaign.

The environment (`content/sandbox.py`) stops templates reaching Python internals
(`{{ ''.__class__.__mro__ }}`) or mutating values, reads templates from the campaign
folder only, and bounds what one post's rendering may cost; `StrictUndefined` turns a
misspelt variable into an error instead of an empty string. Posts are plain text, so
nothing is autoescaped here; the HTML preview escapes on its own.

A template error becomes a `CampaignError` naming the template, the line and the
variable, construct or bound at fault.

White space, one rule by lines (`LineLexer`): a line that holds nothing but block tags
(`{% if %}`, `{% endfor %}`, `{% set %}`) and comments disappears with its newline, and
white space before such a tag is dropped; every other newline stays as written. So
`{% endif %}` at the end of a line of text keeps that line's newline: Jinja's own
`trim_blocks` would drop it and glue the next line on (`…/eastside#SaveEastside`).
`{%+ ... %}` keeps the newline after a tag, `{%- ... -%}` strips white space as Jinja does.
"""

from __future__ import annotations

import functools
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

import jinja2
from jinja2.exceptions import SecurityError
from jinja2.lexer import Lexer

from content import limits as L
from content.budget import TemplateLimit
from content.chars import forbidden_character, refused_in
from content.errors import CampaignError
from content.sandbox import BoundedEnvironment, Plain
from content.variables import base_context, post_context, time_context

__all__ = ["Apart", "Renderer", "base_context", "post_context", "time_context"]


def _plural(n: int, singular: str, plural: str | None = None) -> str:
    return singular if n == 1 else (plural or singular + "s")


# The tokens that end a tag after which a bare line's newline goes: a block tag, a
# comment, a raw block's end. Their value is what closed them: "%}" plainly, "+%}" to
# keep the newline, "-%}..." with the white space already stripped.
_TAG_ENDS = ("block_end", "comment_end", "raw_end")


class LineLexer(Lexer):
    """Jinja's lexer (without `trim_blocks`) with the newline after a tag dropped only
    where the tag's line holds no text and no `{{ }}`: the module's white-space rule."""

    def tokeniter(self, source: str, name: str | None, filename: str | None = None,
                  state: str | None = None) -> Iterator[tuple[int, str, str]]:
        bare = True       # the line so far holds only tags, comments and white space
        trim = False      # the token before closed a tag on a bare line
        for lineno, token, value in super().tokeniter(source, name, filename, state):
            if token == "data":
                if trim and value.startswith("\n"):
                    value = value[1:]
                    bare = True
                _, newline, tail = value.rpartition("\n")
                bare = not tail.strip() if newline else bare and not value.strip()
                trim = False
                if not value:
                    continue
            elif token in _TAG_ENDS:
                trim = bare and value.endswith(("%}", "#}")) and not value.endswith(("+%}", "+#}"))
            elif token == "variable_begin":
                bare = trim = False
            yield lineno, token, value


class _PostEnvironment(BoundedEnvironment):
    @functools.cached_property
    def lexer(self) -> Lexer:
        return LineLexer(self)


class Renderer:
    """Renders a campaign's templates (files in `folder`, or inline text)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.env = _PostEnvironment(
            folder,
            undefined=jinja2.StrictUndefined,
            autoescape=False,
            keep_trailing_newline=False,
            trim_blocks=False,      # LineLexer trims, by the line
            lstrip_blocks=True,
        )
        self.env.add_filter("plural", _plural)
        # by (name, source): a template and, if it is only text and bare variables, its
        # pieces (rendered without Jinja's machinery: planning renders 100,000 posts)
        self._cache: dict[tuple[str, str | None], tuple[jinja2.Template, Plain | None]] = {}

    def render_apart(self, name: str, context: dict[str, Any], *,
                     source: str | None = None) -> Apart | None:
        """Template `name` (or `source`) rendered once for every value of `account`, for
        a `context` whose other variables are those of each post: what `render()` gives
        with any account is `Apart.text(account)`. None where that cannot be had (a
        template that does more with `account` than print it, any error): then each
        post is rendered by `render()`, which says what is wrong.

        The template is rendered with two stand-ins for the account (private-use
        characters, lengths apart, first characters apart); the texts cut at them
        must give the same pieces, so that no stand-in came from anywhere else."""
        try:
            self._template(name, source)
        except CampaignError:
            return None
        apart = (self.env.apart_by_name.get(name) if source is None
                 else self.env.apart_by_source.get(source))
        if not apart:
            return None
        cut: list[list[str]] = []
        chars = 0
        for stand_in in _STAND_INS:
            try:
                raw = self._raw(name, {**context, "account": stand_in}, source)
            except CampaignError:
                return None
            cut.append(raw.split(stand_in))
            chars = self.env.last_chars - (len(cut[-1]) - 1) * len(stand_in)
        if cut[0] != cut[1]:
            return None
        return Apart(tuple(cut[0]), chars)

    def _template(self, name: str, source: str | None) -> tuple[jinja2.Template, Plain | None]:
        cache_key = (name, source)
        found = self._cache.get(cache_key)
        if found is None:
            try:
                tpl = self.env.get_template(name) if source is None else self.env.from_string(source)
            except TemplateLimit as e:
                raise CampaignError(f"template refused: {e.message}", file=e.name or name,
                                    line=e.lineno) from None
            except jinja2.TemplateSyntaxError as e:
                raise CampaignError(f"template syntax error: {e.message}",
                                    file=e.name or name, line=e.lineno) from None
            except jinja2.TemplateNotFound as e:
                raise CampaignError(f"template {e.name!r} not found in {self.folder}",
                                    file=name) from None
            found = self._cache[cache_key] = (
                tpl, self.env.plain_by_name.get(name) if source is None
                else self.env.plain_by_source.get(source))
        return found

    def render(self, name: str, context: dict[str, Any], *, source: str | None = None) -> str:
        """Render template file `name` (or `source`, shown to the user as `name`)."""
        return _tidy(self._raw(name, context, source))

    def _raw(self, name: str, context: dict[str, Any], source: str | None) -> str:
        """`render()`'s text before it is tidied."""
        tpl, pieces = self._template(name, source)
        # A template of text and bare variables is rendered without Jinja's machinery
        # (planning renders 100,000 posts); anything else, and any error, by Jinja.
        if pieces is not None:
            text = self.env.render_plain(pieces, context)
            if text is not None:
                return text
        try:
            text = self.env.render(tpl, context)
        except TemplateLimit as e:
            raise CampaignError(f"template refused: {e.message}", file=name,
                                line=_template_line(tpl, sys.exc_info()[2])) from None
        except jinja2.UndefinedError as e:
            raise CampaignError(f"undefined variable: {_undefined_name(e)}; define it in [vars] "
                                "or the post's vars, or check the spelling",
                                file=name, line=_template_line(tpl, sys.exc_info()[2])) from None
        except SecurityError as e:
            raise CampaignError(f"not allowed in a template: {e}", file=name,
                                line=_template_line(tpl, sys.exc_info()[2])) from None
        except jinja2.TemplateError as e:
            raise CampaignError(f"template error: {e}", file=name,
                                line=_template_line(tpl, sys.exc_info()[2])) from None
        except (TypeError, ValueError, ArithmeticError, LookupError, AttributeError) as e:
            raise CampaignError(f"template error: {type(e).__name__}: {e}", file=name,
                                line=_template_line(tpl, sys.exc_info()[2])) from None
        return text


# Stand-ins for an account in `render_apart`: characters no post holds (private use,
# refused nowhere but printed by no font), first characters apart, lengths apart.
_STAND_INS = ("\ue000tminus\ue000", "\ue001tminus account\ue001")


class Apart:
    """A template's text for one (post, time) as the pieces between the places it
    prints the account, and the characters it charged its budget besides those.

    The pieces are tidied once, with a stand-in where the account goes (`tidied`): an
    account name that is printable and holds no white space (every valid one) has no
    line break for `_tidy` to cut at and nothing for it to strip, so tidying the text
    with the name in it gives those pieces joined by the name. `clean`: they hold no
    character of a kind `content.chars` refuses, so neither does a text made of them
    and such a name, nor is it empty (planning checks 100,000 texts)."""

    __slots__ = ("chars", "clean", "pieces", "raw", "same", "tidied")

    def __init__(self, pieces: tuple[str, ...], chars: int) -> None:
        self.pieces, self.chars = pieces, chars
        self.raw = sum(map(len, pieces))   # the text's length without the account
        # a template that never prints the account: one text for every account
        self.same = _tidy(pieces[0]) if len(pieces) == 1 and len(pieces[0]) <= L.MAX_TEXT_CHARS else None
        stand_in = _STAND_INS[0]   # (no piece holds it: they are cut at it)
        if len(pieces) == 1:
            self.tidied = None
            self.clean = self.same is not None and bool(self.same.strip()) and (
                forbidden_character(self.same) is None)
        else:
            tidied = _tidy(stand_in.join(pieces))
            self.tidied = tuple(tidied.split(stand_in))
            self.clean = not refused_in("".join(self.tidied))

    def text(self, account: str) -> str | None:
        """What `Renderer.render` gives with `account`; None where the real account
        would reach one of the bounds (then `render()` says which)."""
        if self.same is not None:
            return self.same
        pieces = self.pieces
        named = len(pieces) - 1
        if (self.raw + named * len(account) > L.MAX_TEXT_CHARS or len(account) > L.MAX_TEXT_CHARS
                or self.chars + named * len(account) > L.MAX_RENDER_CHARS):
            return None
        if self.tidied is not None and _plain_name(account):
            return account.join(self.tidied)
        return _tidy(account.join(pieces))

    def is_clean(self, account: str) -> bool:
        """Whether `text(account)` is known to be a text `content.expand` accepts
        (not empty, no refused character) without looking at it."""
        return self.clean and (self.same is not None or _plain_name(account))


@functools.lru_cache(maxsize=4096)
def _plain_name(account: str) -> bool:
    """A name with no white space (so no line break), not empty, nothing unprintable
    (no control, format or private-use character: not the stand-in)."""
    return account.isprintable() and account.split() == [account]


def _undefined_name(e: jinja2.UndefinedError) -> str:
    m = re.search(r"'([^']+)' is undefined", str(e.message or ""))
    return m.group(1) if m else str(e.message)


def _template_line(tpl: jinja2.Template, tb: TracebackType | None) -> int | None:
    """Jinja rewrites tracebacks so template frames carry template line numbers."""
    line = None
    filename = tpl.filename or "<template>"
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == filename:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def _tidy(text: str) -> str:
    # Templates are written with trailing newlines and indentation for readability;
    # a post never starts or ends with whitespace, and blank-line runs collapse.
    if "\n" not in text and text == text.strip():
        return text
    joined = "\n".join([ln.rstrip() for ln in text.strip().splitlines()])
    return re.sub(r"\n{3,}", "\n\n", joined) if "\n\n\n" in joined else joined
