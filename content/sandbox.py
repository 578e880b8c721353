"""The template sandbox: Jinja2's `ImmutableSandboxedEnvironment` with every resource
bounded, for templates that may come from anyone.

Jinja's sandbox stops a template reaching Python internals; it does not stop one from
running for hours or filling the memory (`{{ 'a' * 4000000000 }}`, nested
`range(100000)` loops, `{{ n ** 100000000 }}`, `'%0999999999d' % 1`, a macro calling
itself). Here, before a template is compiled, its tokens are checked (nesting, tag
length) and its syntax tree is rewritten so that every loop step is counted; while it
renders, every call, operator, attribute look-up, filter and printed value is charged
to a `RenderBudget` (content/budget.py), and nothing it builds may grow past the bounds in
`content/limits.py`. A bound hit raises `TemplateLimit`, which names the bound.

Budgets are per render and per thread (a context variable), so one post's template
cannot use up another's, and nothing needs a signal or a timer.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator
from functools import wraps
from pathlib import Path
from typing import Any

import jinja2
from jinja2 import nodes
from jinja2.nodes import EvalContext
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import _PassArg
from jinja2.visitor import NodeTransformer

from content import limits as L
from content.budget import (
    TemplateLimit,
    check_brace_format,
    check_percent_format,
    check_text,
    checked,
    counted,
    current,
    fresh,
    replace_size,
    small,
)
from content.files import FileProblem, read_text
from content.paths import PathProblem, inside


class _Rewrite(NodeTransformer):
    """Counts every loop step; bounds every ~; refuses what cannot be bounded."""

    def __init__(self, name: str | None) -> None:
        self.name = name

    def visit_For(self, node: nodes.For) -> nodes.Node:
        if node.recursive:
            raise TemplateLimit("recursive loops are not supported in post templates",
                                name=self.name, lineno=node.lineno)
        self.generic_visit(node)
        literal = sum(len(d.data) for d in _own_data(node.body))
        node.iter = nodes.Call(nodes.ImportedName("content.budget.counted"),
                               [node.iter, nodes.Const(literal)], [], None, None,
                               lineno=node.lineno)
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        self.generic_visit(node)
        return nodes.Call(nodes.ImportedName("content.budget.joined"), list(node.nodes),
                          [], None, None, lineno=node.lineno)


def _own_data(body: list[nodes.Node]) -> Iterator[nodes.TemplateData]:
    """Literal text of a loop body, not counting nested loops (they charge their own)."""
    for n in body:
        if isinstance(n, nodes.TemplateData):
            yield n
        elif not isinstance(n, nodes.For | nodes.Macro | nodes.CallBlock):
            for child in n.iter_child_nodes():
                yield from _own_data([child])


# A template that is only text and `{{ name }}`s (most post templates: "{{ time_left }}
# left. Call {{ call_line }}"), as its pieces: (text, None) or ("", name).
Plain = tuple[tuple[str, str | None], ...]


def plain_pieces(tree: nodes.Template) -> Plain | None:
    """The pieces of a template that is only text and bare variables, or None."""
    pieces: list[tuple[str, str | None]] = []
    for node in tree.body:
        if not isinstance(node, nodes.Output):
            return None
        for child in node.nodes:
            if isinstance(child, nodes.TemplateData):
                pieces.append((child.data, None))
            elif isinstance(child, nodes.Name) and child.ctx == "load":
                pieces.append(("", child.name))
            else:
                return None
    return tuple(pieces)


# The nodes a template may hold for `only_printed`: none that captures or transforms
# what is printed ({% filter %}, {% set x %}...{% endset %}, macros, calls with a
# caller), brings in another template (which sees the same variables) or reaches the
# context itself.
_PURE = (nodes.Template, nodes.Output, nodes.TemplateData, nodes.Name, nodes.Const, nodes.If,
         nodes.For, nodes.Getattr, nodes.Getitem, nodes.Slice, nodes.Filter, nodes.Test,
         nodes.Compare, nodes.Operand, nodes.And, nodes.Or, nodes.Not, nodes.Neg, nodes.Pos,
         nodes.Add, nodes.Sub, nodes.Mul, nodes.Div, nodes.FloorDiv, nodes.Mod, nodes.Pow,
         nodes.CondExpr, nodes.Concat, nodes.Call, nodes.Keyword, nodes.List, nodes.Tuple,
         nodes.Dict, nodes.Pair, nodes.Assign, nodes.ImportedName, nodes.Continue, nodes.Break)


def only_printed(tree: nodes.Template, variable: str) -> bool:
    """Whether `variable` is only ever printed as it is (`{{ account }}`: never
    compared, filtered, measured, joined or assigned), in a template of the nodes
    above: then its output for any value of it is the output for a stand-in value with
    each stand-in replaced (`content.render.Renderer.render_apart`)."""
    def fine(node: nodes.Node, parent: nodes.Node | None) -> bool:
        if not isinstance(node, _PURE):
            return False
        if isinstance(node, nodes.Name) and node.name == variable and not (
                node.ctx == "load" and isinstance(parent, nodes.Output)):
            return False
        return all(fine(child, node) for child in node.iter_child_nodes())
    return fine(tree, None)


# -- template source: checked before Jinja's parser recurses over it -------------------

_OPENERS = {"if", "for", "macro", "call", "filter", "block", "with", "autoescape", "set"}


def check_tokens(env: jinja2.Environment, source: str, name: str | None) -> None:
    """Nesting of blocks and brackets, and length of each tag, within the limits."""
    blocks: list[int] = []
    brackets = tokens = 0
    head: str | None = None   # the first name in the current {% %} tag
    has_assign = False
    for lineno, kind, value in env.lex(source, name):
        if kind in ("block_begin", "variable_begin"):
            brackets = tokens = 0
            head, has_assign = ("" if kind == "block_begin" else None), False
            continue
        if kind in ("whitespace", "data", "comment", "comment_begin", "comment_end",
                    "raw_begin", "raw_end", "linecomment", "linestatement_begin"):
            continue
        if kind in ("block_end", "variable_end"):
            if head in _OPENERS and not (head == "set" and has_assign):
                blocks.append(lineno)
                if len(blocks) > L.MAX_BLOCK_NESTING:
                    raise TemplateLimit(f"blocks ({{% if %}}, {{% for %}}, ...) nested more than "
                                        f"{L.MAX_BLOCK_NESTING} deep", name=name, lineno=lineno)
            elif head and head.startswith("end") and blocks:
                blocks.pop()
            head = None
            continue
        tokens += 1
        if tokens > L.MAX_TAG_TOKENS:
            raise TemplateLimit(f"a tag with more than {L.MAX_TAG_TOKENS} parts; split it up",
                                name=name, lineno=lineno)
        if head == "" and kind == "name":
            head = value
        if kind == "operator":
            if value in "([{":
                brackets += 1
                if brackets > L.MAX_BRACKET_NESTING:
                    raise TemplateLimit(f"brackets nested more than {L.MAX_BRACKET_NESTING} "
                                        "deep", name=name, lineno=lineno)
            elif value in ")]}":
                brackets -= 1
            elif value == "=" and brackets == 0:
                has_assign = True


# -- filters and str methods -----------------------------------------------------------

# The str methods a template may call: reading and re-casing text. Not center/ljust/
# rjust/zfill/expandtabs (a width is a memory request), translate, encode, format_map.
STR_METHODS = frozenset({
    "capitalize", "casefold", "count", "endswith", "find", "format", "index", "isalnum",
    "isalpha", "isdigit", "islower", "isnumeric", "isspace", "istitle", "isupper", "join",
    "lower", "lstrip", "partition", "removeprefix", "removesuffix", "replace", "rfind",
    "rindex", "rpartition", "rsplit", "rstrip", "split", "splitlines", "startswith",
    "strip", "swapcase", "title", "upper",
})


def _pre_filter(name: str, value: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """What a filter would allocate, judged before it runs."""
    if name in ("center", "truncate", "wordwrap"):
        for n in (*args, *kwargs.values()):
            small(n, f"the width given to |{name}", L.MAX_TEXT_CHARS)
    elif name in ("batch", "slice"):
        for n in (*args[:1], *kwargs.values()):
            small(n, f"the count given to |{name}", L.MAX_ITEMS)
    elif name == "indent":
        width = args[0] if args else kwargs.get("width", 4)
        lines = str(value).count("\n") + 1 if isinstance(value, str) else 1
        size = len(width) if isinstance(width, str) else width if isinstance(width, int) else 0
        small(size * lines, "the text |indent would add, in characters,", L.MAX_TEXT_CHARS)
    elif name == "replace" and isinstance(value, str):
        replace_size(value, *args[:3], **kwargs)
    elif name == "format" and isinstance(value, str):
        check_percent_format(value)
    if name in ("join", "string", "format", "tojson", "pprint", "replace", "indent", "center",
                "urlize", "wordwrap", "list"):
        check_text([value, list(args)], f"the result of |{name}")


def _bounded_filter(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    passes_first = _PassArg.from_obj(func) is not None

    @wraps(func)
    def bounded(*args: Any, **kwargs: Any) -> Any:
        current().charge()
        head, rest = (args[:2], args[2:]) if passes_first else (args[:1], args[1:])
        _pre_filter(name, head[-1] if head else None, rest, kwargs)
        result = func(*args, **kwargs)
        if isinstance(result, Iterator):   # map, select, ...: measured as the list it is
            result = list(itertools.islice(counted(result), L.MAX_ITEMS + 1))
        return checked(result)

    return bounded


def _no_lipsum(*args: Any, **kwargs: Any) -> str:
    raise TemplateLimit("lipsum (filler text) is not available in post templates")


def _bounded_range(*args: Any) -> range:
    for n in args:
        small(n, "a range bound", 2**L.MAX_INT_BITS)
    r = range(*args)
    try:
        too_long = len(r) > L.MAX_ITEMS
    except OverflowError:
        too_long = True
    if too_long:
        raise TemplateLimit(f"a range of more than {L.MAX_ITEMS:,} numbers")
    return r


# -- the environment ------------------------------------------------------------------


class CampaignLoader(jinja2.BaseLoader):
    """Templates (and what they include) from the campaign folder only, within size."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def get_source(self, environment: jinja2.Environment, template: str
                   ) -> tuple[str, str, Callable[[], bool]]:
        try:
            path = inside(self.folder, template, what="template")
        except PathProblem as e:
            if "not found" in str(e):
                raise jinja2.TemplateNotFound(template) from None
            raise TemplateLimit(str(e)) from None   # said where it is included from
        try:
            source = read_text(path, limit=L.MAX_TEMPLATE_BYTES)
        except FileProblem as e:
            raise TemplateLimit(str(e), name=template, lineno=e.line) from None
        mtime = path.stat().st_mtime
        return source, str(path), lambda: path.exists() and path.stat().st_mtime == mtime


_MISSING = object()


class BoundedEnvironment(ImmutableSandboxedEnvironment):
    """The sandbox with bounds. Render only with `render()`."""

    intercepted_binops = frozenset({"+", "-", "*", "/", "//", "%", "**"})

    def __init__(self, folder: Path, **options: Any) -> None:
        super().__init__(loader=CampaignLoader(folder), finalize=self._finalize, **options)
        self.concat = self._concat   # type: ignore[method-assign]
        self.globals["lipsum"] = _no_lipsum   # Jinja's generator of pages of filler text
        self.globals["range"] = _bounded_range
        self.filters = {k: _bounded_filter(k, f) for k, f in self.filters.items()}
        self._loading: list[str] = []
        # what `plain_pieces` found for each template parsed: by name for a file, by
        # source for a string (`from_string` parses with no name)
        self.plain_by_name: dict[str, Plain | None] = {}
        self.plain_by_source: dict[str, Plain | None] = {}
        # whether a template prints `account` only as it is (`only_printed`), likewise
        self.apart_by_name: dict[str, bool] = {}
        self.apart_by_source: dict[str, bool] = {}
        self.last_chars = 0   # the characters the last render charged to its budget
        self._contexts: dict[jinja2.Template, Context] = {}   # see `_context`

    def add_filter(self, name: str, func: Callable[..., Any]) -> None:
        self.filters[name] = _bounded_filter(name, func)

    def render(self, template: jinja2.Template, context: dict[str, Any]) -> str:
        """`template` rendered with `context` (shared, not copied: planning renders
        100,000 posts) under a fresh budget."""
        with fresh() as budget:
            for k, v in self.globals.items():
                context.setdefault(k, v)
            try:
                text = self.concat(template.root_render_func(self._context(template, context)))
            except Exception:
                self.handle_exception()  # re-raises, with frames pointing at template lines
                raise
            self.last_chars = budget.chars
            return text

    def _context(self, template: jinja2.Template, context: dict[str, Any]) -> Context:
        """What `template.new_context(context, shared=True)` makes, copied from one made
        once per template: Jinja's own builds an evaluation context, a set of the
        globals' names and the blocks' lists on every call, a fifth of the time of
        rendering a short template. Everything a render may change is new each time."""
        proto = self._contexts.get(template)
        if proto is None:
            proto = self._contexts[template] = template.new_context({}, shared=True)
        ctx: Context = object.__new__(type(proto))
        ctx.__dict__.update(proto.__dict__)
        ctx.parent, ctx.vars, ctx.exported_vars = context, {}, set()
        ctx.eval_ctx = object.__new__(EvalContext)
        ctx.eval_ctx.__dict__.update(proto.eval_ctx.__dict__)
        ctx.blocks = {k: list(v) for k, v in proto.blocks.items()}
        return ctx

    def render_plain(self, pieces: Plain, context: dict[str, Any]) -> str | None:
        """What `render()` gives a template of `pieces` (text and bare variables), without
        Jinja's context and generator — the same finalize, budget and length bound, in
        the same order; None wherever anything is not plain (a variable missing, any
        error): then `render()` says what, with the template's line."""
        with fresh() as budget:
            out, total = [], 0
            try:
                for text, name in pieces:
                    if name is not None:
                        # the context's value, else the global's: what `render()` sees
                        # once it has set the globals into the context
                        value = context.get(name, _MISSING)
                        if value is _MISSING:
                            value = self.globals.get(name, _MISSING)
                            if value is _MISSING:
                                return None
                        if type(value) is str and len(value) <= L.MAX_TEXT_CHARS:
                            budget.charge(ops=1, chars=len(value))   # _finalize's charge
                            text = value
                        else:
                            text = str(self._finalize(value))
                    total += len(text)
                    if total > L.MAX_TEXT_CHARS:
                        return None
                    out.append(text)
            except Exception:
                return None
            self.last_chars = budget.chars
        return "".join(out)

    # -- compile time ---------------------------------------------------------------------

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        check_tokens(self, source, name)
        try:
            tree = super()._parse(source, name, filename)
        except RecursionError:
            raise TemplateLimit("nested too deeply to read", name=name) from None
        _Rewrite(name).visit(tree)   # in place: the root node stays what it is
        self._check_references(tree, name)
        if name is None:
            self.plain_by_source[source] = plain_pieces(tree)
            self.apart_by_source[source] = only_printed(tree, "account")
        else:
            self.plain_by_name[name] = plain_pieces(tree)
            self.apart_by_name[name] = only_printed(tree, "account")
        return tree

    def _compile(self, source: str, filename: str) -> Any:
        try:
            return super()._compile(source, filename)
        except (RecursionError, MemoryError, SyntaxError):  # the token checks should prevent it
            raise TemplateLimit("too deeply nested to compile", name=filename) from None

    def _check_references(self, tree: nodes.Template, name: str | None) -> None:
        """Included, imported and extended templates: named in quotes, no cycles, a
        bounded chain; each loaded (and so checked) now rather than while rendering."""
        here = name or "the post's text"
        for node in tree.find_all((nodes.Include, nodes.Import, nodes.FromImport, nodes.Extends)):
            target = node.template  # type: ignore[attr-defined]
            names = ([target.value] if isinstance(target, nodes.Const) else
                     [n.value for n in target.items if isinstance(n, nodes.Const)]
                     if isinstance(target, nodes.List | nodes.Tuple) else [])
            if not names or not all(isinstance(n, str) for n in names):
                raise TemplateLimit("name the template in quotes, e.g. {% include \"footer.j2\" %}",
                                    name=name, lineno=node.lineno)
            for child in names:
                if child == here:
                    raise TemplateLimit(f"{child} includes itself", name=name, lineno=node.lineno)
                if child in self._loading:
                    chain = " → ".join([*self._loading, here, child])
                    raise TemplateLimit(f"templates include each other in a circle ({chain})",
                                        name=name, lineno=node.lineno)
                if len(self._loading) >= L.MAX_INCLUDE_DEPTH:
                    raise TemplateLimit(f"includes nested more than {L.MAX_INCLUDE_DEPTH} deep",
                                        name=name, lineno=node.lineno)
                self._loading.append(here)
                try:
                    self.get_template(child)
                except jinja2.TemplateNotFound:
                    if not getattr(node, "ignore_missing", False):
                        raise TemplateLimit(f"template {child!r} not found in the campaign folder",
                                            name=name, lineno=node.lineno) from None
                except TemplateLimit as e:
                    if e.name is None:
                        e.name, e.lineno = name, node.lineno
                    raise
                finally:
                    self._loading.pop()

    # -- render time -----------------------------------------------------------------------

    @staticmethod
    def _finalize(value: Any) -> Any:
        if isinstance(value, str):
            # what `charge()` then `checked()` would do, in one charge: the same
            # bounds, checked in the same order (planning prints 500,000 values)
            if len(value) > L.MAX_TEXT_CHARS:
                current().charge()
                return checked(value)
            current().charge(ops=1, chars=len(value))
            return value
        current().charge()
        if not isinstance(value, int | float | type(None) | jinja2.Undefined):
            check_text(value, "a printed value")
        return value

    @staticmethod
    def _concat(pieces: Iterable[str]) -> str:
        out: list[str] = []
        append, total, most = out.append, 0, L.MAX_TEXT_CHARS
        for piece in pieces:
            total += len(piece)
            if total > most:
                raise TemplateLimit(f"the text is longer than {most:,} characters")
            append(piece)
        return "".join(out)

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        if isinstance(obj, str) and attr not in STR_METHODS:
            return False
        return super().is_safe_attribute(obj, attr, value)

    def getattr(self, obj: Any, attribute: str) -> Any:
        current().charge()
        return super().getattr(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        current().charge()
        return super().getitem(obj, argument)

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        fmt = super().wrap_str_format(value)
        if fmt is None:
            return None
        template: str = value.__self__

        @wraps(fmt)
        def bounded(*args: Any, **kwargs: Any) -> str:
            check_brace_format(template)
            check_text([args, kwargs], "the arguments of format")
            return str(checked(fmt(*args, **kwargs)))

        return bounded

    def call_binop(self, context: jinja2.runtime.Context, operator: str, left: Any,
                   right: Any) -> Any:
        current().charge()
        if operator == "*":
            for seq, n in ((left, right), (right, left)):
                if isinstance(seq, str | list | tuple) and isinstance(n, int):
                    unit, most = (("characters", L.MAX_TEXT_CHARS) if isinstance(seq, str)
                                  else ("items", L.MAX_ITEMS))
                    if len(seq) * n > most:
                        raise TemplateLimit(f"* {n:,} would make {len(seq) * n:,} {unit}; at "
                                            f"most {most:,}")
        elif operator == "**" and isinstance(left, int) and isinstance(right, int):
            # the result has at least (bits - 1) * right + 1 bits: refuse before computing
            if right > 0 and (left.bit_length() - 1) * right > L.MAX_INT_BITS:
                raise TemplateLimit(f"{left} ** {right} is a number too large for a post")
        elif operator == "%" and isinstance(left, str):
            check_percent_format(left)
            check_text(right, "the values of % formatting")
        elif (operator == "+" and isinstance(left, str | list | tuple) and isinstance(right, type(left))
              and len(left) + len(right) > (L.MAX_TEXT_CHARS if isinstance(left, str) else L.MAX_ITEMS)):
            raise TemplateLimit("adding these makes a text or list too long for a post")
        return checked(super().call_binop(context, operator, left, right))

    def call(__self, __context: jinja2.runtime.Context, __obj: Any,
             *args: Any, **kwargs: Any) -> Any:
        budget = current()
        budget.charge()
        owner = getattr(__obj, "__self__", None)
        if isinstance(owner, str):
            method = getattr(__obj, "__name__", "")
            if method == "replace" and args:
                replace_size(owner, *args[:3], **kwargs)
            elif method == "join" and args:
                items = list(counted(args[0]))
                check_text([*items, owner * max(0, len(items) - 1)], "the joined text")
                args = (items, *args[1:])
        budget.depth += 1
        try:
            if budget.depth > L.MAX_CALL_DEPTH:
                raise TemplateLimit(f"macros call each other more than {L.MAX_CALL_DEPTH} deep "
                                    "(a macro that calls itself?)")
            return checked(super().call(__context, __obj, *args, **kwargs))
        finally:
            budget.depth -= 1
