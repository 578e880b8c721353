"""The bounded template sandbox (content/sandbox.py), the character rules
(content/chars.py) and the bounded file reading (content/files.py), one bound at a time:
each is hit with a clear message, and what a real template does stays possible.
"""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path

import pytest

from content import limits, sandbox
from content.chars import forbidden_character, visible
from content.errors import CampaignError
from content.files import FileProblem, load_toml, read_text, toml_nesting
from content.render import Renderer
from tests.test_render import context


def render(folder: Path, source: str, before: timedelta = timedelta(days=4)) -> str:
    return Renderer(folder).render("inline", context(folder, before), source=source)


def refused(folder: Path, source: str, *fragments: str) -> str:
    with pytest.raises(CampaignError) as info:
        render(folder, source)
    message = str(info.value)
    assert "template refused" in message or "not allowed" in message, message
    for f in fragments:
        assert f in message, message
    return message


# ------------------------------------------------------------------ what still works


def test_an_ordinary_template_renders(tmp_path: Path) -> None:
    (tmp_path / "footer.j2").write_text("{{ hashtags }}", encoding="utf-8")
    (tmp_path / "macros.j2").write_text("{% macro left(n) %}{{ n }} {{ n|plural('day') }}{% endmacro %}",
                                        encoding="utf-8")
    source = ("{% from 'macros.j2' import left %}{{ left(days_left) }}: "
              "{{ '{:,}'.format(12345) }} signed, {{ '%d%%' % 74 }} of the goal. "
              "{% for word in ['call', 'write', 'go'] %}{{ loop.index }}.{{ word|upper }} {% endfor %}"
              "{% set tail %}{{ 'x' * 3 }}{% endset %}{{ tail ~ '!' }} {{ (2 ** 10) // 3 }} "
              "{{ ['a', 'b']|map('upper')|join('/') }} {{ call_line.replace('-', '.') }} "
              "{{ '  padded '.strip().title() }} {% include 'footer.j2' %}")
    assert render(tmp_path, source) == ("4 days: 12,345 signed, 74% of the goal. 1.CALL 2.WRITE 3.GO "
                                         "xxx! 341 A/B 202.456.1111 Padded #POTUSpardon #HereToStay")


def test_the_budget_is_per_render(tmp_path: Path) -> None:
    # about 60% of the operation budget each time: a shared budget would run out
    inner = limits.MAX_RENDER_OPERATIONS // 500     # 2 operations a step, 100 x inner steps
    source = ("{% for i in range(100) %}{% for j in range(" + str(inner) + ") %}{% set x = j % 2 %}"
              "{% endfor %}{% endfor %}ok")
    r = Renderer(tmp_path)
    ctx = context(tmp_path, timedelta(days=1))
    for _ in range(3):
        assert r.render("inline", dict(ctx), source=source) == "ok"


def test_budgets_are_per_thread(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(limits, "MAX_RENDER_OPERATIONS", 3000)
    source = "{% for i in range(900) %}{{ i % 2 }}{% endfor %}"   # ~2,700 operations
    results: list[str] = []

    def work() -> None:
        results.append(render(tmp_path, source)[:4])

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == ["0101"] * 4


def test_a_template_cannot_be_rendered_without_a_budget(tmp_path: Path) -> None:
    env = sandbox.BoundedEnvironment(tmp_path)
    with pytest.raises(RuntimeError, match="rendered with BoundedEnvironment.render"):
        env.from_string("{{ 1 + 1 }}").render()


# ------------------------------------------------------------------ one bound at a time


def test_operation_budget(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(limits, "MAX_RENDER_OPERATIONS", 1000)
    assert render(tmp_path, "{% for i in range(300) %}{% endfor %}ok") == "ok"
    refused(tmp_path, "{% for i in range(30) %}{% for j in range(40) %}{% endfor %}{% endfor %}",
            "more than 1,000 operations")


def test_wall_clock_backstop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # checked every 1,024 operations; a bound already passed trips at the first check
    monkeypatch.setattr(limits, "RENDER_SECONDS", -1.0)
    assert render(tmp_path, "{% for i in range(100) %}{% endfor %}ok") == "ok"
    refused(tmp_path, "{% for i in range(2000) %}{% endfor %}", "took over -1 s")


def test_characters_produced_along_the_way(tmp_path: Path) -> None:
    paragraph = "x" * 5000
    refused(tmp_path, "{% set s %}{% for i in range(1000) %}" + paragraph + "{% endfor %}{% endset %}ok",
            f"more than {limits.MAX_RENDER_CHARS:,} characters")


def test_output_size(tmp_path: Path) -> None:
    refused(tmp_path, "{% for i in range(3000) %}0123456789{% endfor %}",
            f"longer than {limits.MAX_TEXT_CHARS:,} characters")


@pytest.mark.parametrize(("source", "says"), [
    ("{{ range(10001)|list|length }}", "a range of more than 10,000"),
    ("{{ range(1180591620717411303424)|length }}", "a range bound is"),
    ("{{ [1, 2] * 6000 }}", "would make 12,000 items"),
    ("{{ 'ab' * 10001 }}", "would make 20,002 characters"),
    ("{{ 3 * 'ab' * 10001 }}", "would make"),
    ("{{ 2 ** 65 }}", "is a number too large"),
    ("{{ 2 ** 64 }}", "a number over 2**64"),
    ("{{ ('9' * 40)|int }}", "a number over 2**64"),
    ("{{ '%*d' % (5, 1) }}", "a * width"),
    ("{{ '%.999d' % 1 }}", "a % format width is 999"),
    ("{{ '%0999999999d'|format(1) }}", "a % format width is 999,999,999"),
    ("{{ '{:{w}}'.format(1, w=9) }}", "taken from an argument"),
    ("{{ '{:0999999999}'.format_map({}) }}", "a format width is 999,999,999"),
    ("{{ 'a'|center(999999999) }}", "the width given to |center is 999,999,999"),
    ("{{ 'a\nb'|indent(999999999) }}", "the text |indent would add"),
    ("{{ [1]|batch(99999999, 0)|list }}", "the count given to |batch"),
    ("{{ [1]|slice(99999999)|list }}", "the count given to |slice"),
    ("{{ 'ab'|replace('', 'x' * 10000) }}", "replace would make"),
    ("{{ 'abababab'.replace('a', 'x' * 9000) }}", "replace would make"),
    ("{{ ('x' * 9000).join(['a', 'b', 'c', 'd']) }}", "the joined text"),
    ("{{ ['x' * 9000, 'y' * 9000, 'z' * 9000]|join }}", "the result of |join"),
    ("{{ 'a'.ljust(9) }}", "ljust"),
    ("{{ 'a'.zfill(9) }}", "zfill"),
    ("{{ lipsum(5) }}", "lipsum"),
    ("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}", f"more than {limits.MAX_CALL_DEPTH} deep"),
    ("{% for x in [[1]] recursive %}{{ loop(x) }}{% endfor %}", "recursive loops are not supported"),
    ("{% set name = 'x.j2' %}{% include name %}", "name the template in quotes"),
])
def test_each_bound_is_a_clear_error(tmp_path: Path, source: str, says: str) -> None:
    refused(tmp_path, source, says)


def test_nesting_and_tag_length_are_checked_before_parsing(tmp_path: Path) -> None:
    deep = limits.MAX_BLOCK_NESTING
    assert render(tmp_path, "{% if true %}" * deep + "ok" + "{% endif %}" * deep) == "ok"
    refused(tmp_path, "line one\n" + "{% if true %}" * (deep + 1) + "x" + "{% endif %}" * (deep + 1),
            "nested more than", "inline:2")
    mixed = "{% for a in [1] %}{% if a %}{% with b = a %}" * 3 + "{{ b }}" + \
        "{% endwith %}{% endif %}{% endfor %}" * 3
    assert render(tmp_path, mixed) == "1"                        # 9 levels compile
    brackets = limits.MAX_BRACKET_NESTING
    assert render(tmp_path, "{{ " + "(" * brackets + "1" + ")" * brackets + " }}") == "1"
    refused(tmp_path, "{{ " + "[" * (brackets + 1) + "]" * (brackets + 1) + " }}", "brackets nested")
    refused(tmp_path, "{{ " + " + ".join(["1"] * 60) + " }}", "more than 100 parts")
    refused(tmp_path, "{{ " + "not " * 120 + "true }}", "more than 100 parts")
    assert render(tmp_path, "{% set x = 1 %}" * 50 + "{{ x }}") == "1"  # not blocks


def test_include_cycles_and_chains(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, body in {"a.j2": "{% include 'b.j2' %}", "b.j2": "{% include 'c.j2' %}",
                       "c.j2": "{% import 'a.j2' as a %}", "ok.j2": "fine"}.items():
        (tmp_path / name).write_text(body, encoding="utf-8")
    message = refused(tmp_path, "{% include 'a.j2' %}", "include each other in a circle")
    assert "a.j2 → b.j2 → c.j2 → a.j2" in message
    assert render(tmp_path, "{% include 'ok.j2' %} {% include 'missing.j2' ignore missing %}") == "fine"
    refused(tmp_path, "{% include 'missing.j2' %}", "'missing.j2' not found")
    monkeypatch.setattr(limits, "MAX_INCLUDE_DEPTH", 2)
    (tmp_path / "c.j2").write_text("{% include 'ok.j2' %}", encoding="utf-8")
    refused(Path(tmp_path), "{% include 'a.j2' %}", "includes nested more than 2 deep")


# ------------------------------------------------------------------ characters


@pytest.mark.parametrize("text", [
    "plain text\nwith a newline", "👩\u200d💻 coder", "می\u200cخواهم", "क्\u200dष",
    "🏴\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f Scotland", "❤️ love",
    "日本語とEnglish", "emoji 🇪🇸 flag", "Ünïcödé — “quotes” ‘and’ NBSP\u00a0here",
])
def test_text_real_writing_needs_is_allowed(text: str) -> None:
    assert forbidden_character(text) is None
    assert visible(text) == text


@pytest.mark.parametrize(("text", "says"), [
    ("tab\there", "U+0009 (a tab) at character 4; write spaces instead"),
    ("a\r\nb", "U+000D (a carriage return)"),
    ("\ufeffstart", "U+FEFF ZERO WIDTH NO-BREAK SPACE (an invisible byte-order mark"),
    ("x\x1b[8mhidden", "U+001B (a terminal escape"),
    ("file.\u202etxt.exe", "U+202E RIGHT-TO-LEFT OVERRIDE"),
    ("iso\u2066late\u2069", "U+2066 LEFT-TO-RIGHT ISOLATE"),
    ("rlm\u200f", "U+200F RIGHT-TO-LEFT MARK"),
    ("zero\u200bwidth", "U+200B ZERO WIDTH SPACE"),
    ("soft\u00adhyphen", "U+00AD SOFT HYPHEN"),
    ("word\u2060joiner", "U+2060 WORD JOINER"),
    ("line\u2028sep", "write a newline instead"),
    ("bell\x07", "U+0007"),
    ("del\x7f", "U+007F"),
    ("c1\x85", "U+0085"),
    ("\u200d leading joiner", "joins nothing"),
    ("tag \U000e0041 alone", "a tag character outside an emoji flag"),
    ("lone \udcff", "a lone surrogate"),
    ("two\nlines\u202e", "at line 2, character 6"),
])
def test_invisible_and_control_characters_are_refused(text: str, says: str) -> None:
    problem = forbidden_character(text)
    assert problem is not None and says in problem, problem


def test_the_shortcut_refuses_what_the_walk_refuses() -> None:
    # forbidden_character lets a text through without walking it when it holds no
    # character of a refused category: each code point (every ASCII one, every 61st
    # beyond), alone and between letters, joiners and a flag, must get the same answer
    # both ways
    from content.chars import _first_refused
    codes = [*range(128), *range(128, 0x110000, 61), *range(0x2000, 0x2070), 0x200C, 0x200D, 0xE0067, 0xE007F]
    for code in codes:
        ch = chr(code)
        for text in (ch, f"a{ch}b", f"\U0001f3f4{ch}", f"a\u200d{ch}", f"{ch}\n"):
            assert forbidden_character(text) == _first_refused(text), (hex(code), text)


def test_visible_shows_what_would_hide() -> None:
    assert visible("a\x1b[8mb\u202ec\nd") == "a<U+001B>[8mb<U+202E>c\nd"


# ------------------------------------------------------------------ files


def test_read_text_bounds_size_and_drops_a_leading_bom(tmp_path: Path) -> None:
    f = tmp_path / "t.j2"
    f.write_bytes(b"\xef\xbb\xbfHello")
    assert read_text(f, limit=100) == "Hello"
    f.write_bytes(b"x" * 101)
    with pytest.raises(FileProblem, match="larger than 100 bytes"):
        read_text(f, limit=100)
    f.write_bytes(b"ok\nse\xf1or")
    with pytest.raises(FileProblem, match="byte 0xf1") as info:
        read_text(f, limit=100)
    assert info.value.line == 2


def test_toml_nesting_ignores_strings_and_comments() -> None:
    text = ('a = "[[[[" # [[[[\nb = \'[[[\'\nc = """\n[[[[\n"""\nd = "q\\"[[["\n'
            "[table]\n[[posts]]\ne = [[1, [2]], { f = [3] }]\n")
    assert toml_nesting(text) == (3, 9)


def test_load_toml_refuses_deep_nesting_before_parsing() -> None:
    ok = "x = " + "[" * limits.MAX_TOML_NESTING + "]" * limits.MAX_TOML_NESTING
    assert load_toml(ok)["x"]
    with pytest.raises(FileProblem, match=f"nested 100000 deep; a campaign needs at most {limits.MAX_TOML_NESTING}"):
        load_toml("x = " + "[" * 100_000 + "]" * 100_000)
