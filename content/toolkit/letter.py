"""The fill-in letter, compiled so the browser only substitutes.

The letter is a template like any other, with blanks written `{{ fill.name }}`. At
build time it is rendered once with each blank replaced by a marker, and the result
cut at the markers into segments: literal text and named blanks. The page joins the
segments with what the supporter typed and tidies the result with the same rule the
renderer applies to every text (`content.render`: outer whitespace stripped, trailing
spaces cut, blank-line runs collapsed). So the letter a supporter sends is exactly
what `Renderer.render` gives for their values.

That holds only if a blank is printed as it is. A filter on it (`fill.name|upper`) or a
test (`{% if fill.city %}`) would need the template engine in the browser, so the build
refuses a letter that uses a blank any other way (read from the template's syntax
tree), and renders it for sample values both ways to be sure.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import jinja2
from jinja2 import nodes

from content.errors import CampaignError
from content.render import Renderer, _tidy

_OPEN, _CLOSE = "\ue000", "\ue001"      # private-use: no campaign text holds them
_MARKER = re.compile(f"{_OPEN}([a-z0-9_]+){_CLOSE}")

Segment = tuple[str, str]               # ("text", literal) or ("blank", name)


def marker(name: str) -> str:
    return f"{_OPEN}{name}{_CLOSE}"


def blanks_used(renderer: Renderer, name: str, source: str | None) -> tuple[list[str], bool]:
    """The `fill.X` (and `fill["X"]`) names a template reads, in order of first use, and
    whether it does anything but print one as it is (a filter, a test, a loop)."""
    try:
        text = source if source is not None else renderer.env.loader.get_source(  # type: ignore[union-attr]
            renderer.env, name)[0]
        tree = renderer.env.parse(text)
    except (jinja2.TemplateError, OSError, UnicodeDecodeError):
        return [], False                # the render reports it, with its line
    printed = {id(child) for node in _walk(tree) if isinstance(node, nodes.Output)
               for child in node.nodes}
    found: list[str] = []
    misused = False
    for node in _walk(tree):
        attr = None
        if isinstance(node, nodes.Getattr) and _is_fill(node.node):
            attr = node.attr
        elif isinstance(node, nodes.Getitem) and _is_fill(node.node) \
                and isinstance(node.arg, nodes.Const):
            attr = str(node.arg.value)
        if attr is not None:
            misused = misused or id(node) not in printed
            if attr not in found:
                found.append(attr)
    fill_names = sum(1 for node in _walk(tree) if _is_fill(node))
    return found, misused or fill_names != sum(
        1 for node in _walk(tree) if isinstance(node, nodes.Getattr | nodes.Getitem) and _is_fill(node.node))


def _is_fill(node: nodes.Node) -> bool:
    return isinstance(node, nodes.Name) and node.name == "fill"


def _walk(node: nodes.Node) -> Iterator[nodes.Node]:
    yield node
    for child in node.iter_child_nodes():
        yield from _walk(child)


def compile_segments(render: Callable[[dict[str, str]], str],
                     names: list[str]) -> list[Segment]:
    """Render with a marker in each blank and cut the result into segments."""
    out: list[Segment] = []
    text = render({n: marker(n) for n in names})
    position = 0
    for m in _MARKER.finditer(text):
        if m.start() > position:
            out.append(("text", text[position:m.start()]))
        out.append(("blank", m.group(1)))
        position = m.end()
    if position < len(text):
        out.append(("text", text[position:]))
    return out


def fill(segments: list[Segment], values: dict[str, str]) -> str:
    """The letter for `values`: what the page computes as the supporter types."""
    return _tidy("".join(v if kind == "text" else values.get(v, "") for kind, v in segments))


MISUSE = ("a blank may only be printed as it is, {{ fill.NAME }}: no filters on it and "
          "no {% if %} on it (the page fills the letter in as supporters type)")


def check_segments(segments: list[Segment], render: Callable[[dict[str, str]], str],
                   names: list[str], *, file: str, key: str) -> None:
    """Refuse a letter the browser would fill differently from the renderer."""
    samples = [{n: f"Sample {n} {i}" for i, n in enumerate(names)}, dict.fromkeys(names, ""),
               {n: f"  {n}  " for n in names}]
    for values in samples:
        if fill(segments, values) != render(values):
            raise CampaignError(MISUSE, file=file, key=key)


def context_with(base: dict[str, Any], values: dict[str, str]) -> dict[str, Any]:
    context = dict(base)
    context["fill"] = dict(values)
    return context
