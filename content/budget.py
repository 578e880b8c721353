"""What one post's rendering may spend, and the size checks every operation makes.

`content/sandbox.py` charges a `RenderBudget` for each call, operator, attribute
look-up, filter, printed value and loop step of a template, and runs what a template
builds through `checked()`; the bounds are those of `content/limits.py`. The budget is
a context variable set for the length of one render, so renders in several threads
(or one after another) each have their own.
"""

from __future__ import annotations

import re
import string
import time
from collections.abc import Iterable, Iterator
from contextvars import ContextVar
from typing import Any

from content import limits as L


class TemplateLimit(Exception):
    """A template asked for more than a post template may; `name` and `lineno` say
    where when it is known before rendering (a render-time one gets its line from the
    traceback)."""

    def __init__(self, message: str, *, name: str | None = None,
                 lineno: int | None = None) -> None:
        super().__init__(message)
        self.message, self.name, self.lineno = message, name, lineno


class RenderBudget:
    """What one render may still spend: operations, characters produced, call depth."""

    __slots__ = ("chars", "depth", "ops", "started")

    def __init__(self) -> None:
        self.ops = self.chars = self.depth = 0
        self.started = time.monotonic()

    def charge(self, ops: int = 1, chars: int = 0) -> None:
        self.ops += ops
        self.chars += chars
        if self.ops > L.MAX_RENDER_OPERATIONS:
            raise TemplateLimit(f"the template does more than {L.MAX_RENDER_OPERATIONS:,} "
                                "operations for one post (a loop or macro that runs away?)")
        if self.chars > L.MAX_RENDER_CHARS:
            raise TemplateLimit(f"the template produces more than {L.MAX_RENDER_CHARS:,} "
                                "characters of text for one post")
        if not self.ops & 0x3FF and time.monotonic() - self.started > L.RENDER_SECONDS:
            raise TemplateLimit(f"rendering one post took over {L.RENDER_SECONDS:g} s")


_BUDGET: ContextVar[RenderBudget | None] = ContextVar("tminus_render_budget", default=None)


class fresh:
    """A new budget for the render inside the `with`. A class, not a generator
    function: planning enters one per post (100,000), and contextlib's wrapper costs
    several times what setting a context variable does."""

    __slots__ = ("budget", "token")

    def __enter__(self) -> RenderBudget:
        self.budget = RenderBudget()
        self.token = _BUDGET.set(self.budget)
        return self.budget

    def __exit__(self, *exc: object) -> None:
        _BUDGET.reset(self.token)


def current() -> RenderBudget:
    budget = _BUDGET.get()
    if budget is None:
        # Outside `BoundedEnvironment.render` (e.g. Jinja folding constants while it
        # compiles): refuse, so the work happens at render time, under a budget.
        raise RuntimeError("templates are rendered with BoundedEnvironment.render")
    return budget


# -- sizes ------------------------------------------------------------------------------


def text_size(value: Any, limit: int = L.MAX_TEXT_CHARS) -> int:
    """About how many characters `str(value)` has, counting no further than `limit`
    (so a list holding itself many times over is measured in bounded time)."""
    stack, total, visited = [value], 0, 0
    while stack and total <= limit:
        v = stack.pop()
        visited += 1
        if isinstance(v, str):
            total += len(v) + 2
        elif isinstance(v, list | tuple | set | frozenset):
            total += 2
            stack.extend(list(v)[:limit])
        elif isinstance(v, dict):
            total += 2
            stack.extend(list(v.items())[:limit])
        else:
            total += 24
    current().charge(ops=visited // 64)
    return total


def check_text(value: Any, what: str = "a value") -> None:
    if text_size(value) > L.MAX_TEXT_CHARS:
        raise TemplateLimit(f"{what} would be longer than {L.MAX_TEXT_CHARS:,} characters")


def checked(value: Any) -> Any:
    """`value`, a result the template just built, if it is within the bounds (a text
    is charged to the budget: producing it cost that much)."""
    if isinstance(value, str):
        if len(value) > L.MAX_TEXT_CHARS:
            raise TemplateLimit(f"a text of {len(value):,} characters; at most "
                                f"{L.MAX_TEXT_CHARS:,}")
        current().charge(chars=len(value))
    elif isinstance(value, bool):
        pass
    elif isinstance(value, int):
        if value.bit_length() > L.MAX_INT_BITS:
            raise TemplateLimit(f"a number over 2**{L.MAX_INT_BITS}; templates count days "
                                "and signatures, not more")
    elif isinstance(value, list | tuple | dict | set | frozenset | range) and len(value) > L.MAX_ITEMS:
        raise TemplateLimit(f"a list of {len(value):,} items; at most {L.MAX_ITEMS:,}")
    return value


def small(n: Any, what: str, limit: int) -> None:
    if isinstance(n, int) and not isinstance(n, bool) and abs(n) > limit:
        raise TemplateLimit(f"{what} is {n:,}; at most {limit:,}")


_PERCENT_SPEC = re.compile(r"%(?:\([^)]*\))?[#0 +-]*(\*|\d+)?(?:\.(\*|\d+))?")


def check_percent_format(fmt: str) -> None:
    """'%0999999999d' % 1 would build a string of a billion characters."""
    for width, precision in _PERCENT_SPEC.findall(fmt):
        for n in (width, precision):
            if n == "*":
                raise TemplateLimit("a * width in % formatting is not allowed; write the "
                                    "width as a number")
            small(int(n) if n else 0, "a % format width", L.MAX_FORMAT_WIDTH)


def check_brace_format(fmt: str) -> None:
    """'{:>999999999}'.format(1), and widths taken from arguments ('{:{w}}')."""
    try:
        fields = list(string.Formatter().parse(fmt))
    except ValueError as e:
        raise TemplateLimit(f"bad format string: {e}") from None
    for _, _, spec, _ in fields:
        if spec and "{" in spec:
            raise TemplateLimit("a format width taken from an argument is not allowed")
        for n in re.findall(r"\d+", spec or ""):
            small(int(n), "a format width", L.MAX_FORMAT_WIDTH)


# -- loops, concatenation: rewritten into counted calls -------------------------------


def counted(iterable: Iterable[Any], literal_chars: int = 0) -> Iterator[Any]:
    """A loop's items; each step costs an operation and the text the loop body writes
    out literally (so 1,000 steps of a long paragraph are charged as such)."""
    budget = current()
    for item in iterable:
        budget.charge(ops=1, chars=literal_chars)
        yield item


def joined(*parts: Any) -> str:
    """`a ~ b`: each part is measured before it is turned into text."""
    for p in parts:
        check_text(p, "a text joined with ~")
    text = "".join(str(p) for p in parts)
    checked(text)
    return text


def replace_size(s: str, old: Any, new: Any, count: Any = -1) -> None:
    if isinstance(old, str) and isinstance(new, str):
        hits = len(s) + 1 if not old else s.count(old)
        if isinstance(count, int) and count >= 0:
            hits = min(hits, count)
        if len(s) + hits * max(0, len(new) - len(old)) > L.MAX_TEXT_CHARS:
            raise TemplateLimit(f"replace would make a text over {L.MAX_TEXT_CHARS:,} characters")
