"""Tests of content.render and content.countdown: the text a post goes out with.

The deadline is noon Eastern on 20 Jan 2017, 17:00 UTC; countdown values are worked out
from the post's own time, e.g. T-3h30m is 13:30 UTC with 3 hours (210 minutes) left.
"""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from content.campaign import AccountSpec, Campaign, load_campaign
from content.countdown import about, countdown_context, time_left
from content.errors import CampaignError
from content.expand import expand_campaign
from content.render import Renderer, base_context, post_context

NY = ZoneInfo("America/New_York")
DEADLINE = datetime(2017, 1, 20, 17, 0, tzinfo=UTC)


def campaign(folder: Path, *, vars: dict[str, Any] | None = None) -> Campaign:
    return Campaign(
        slug="potuspardon", title="Pardon", deadline=DEADLINE, timezone=NY,
        hashtags=("#POTUSpardon", "#HereToStay"),
        vars={"call_line": "202-456-1111", "organizations": 140, **(vars or {})},
        accounts={"org_x": AccountSpec(name="org_x", platform="x", credentials="ORG_X",
                                       tier="free")},
        posts=(), folder=folder)


def context(folder: Path, before: timedelta, *, extra: dict[str, Any] | None = None,
            account: str = "org_x", platform: str = "x", language: str | None = None,
            vars: dict[str, Any] | None = None) -> dict[str, Any]:
    c = campaign(folder, vars=vars)
    base = base_context(campaign=c, account=account, platform=platform,
                        extra_vars=extra or {}, language=language)
    return post_context(base, campaign=c, due=DEADLINE - before)


def render(tmp_path: Path, source: str, before: timedelta = timedelta(days=1), **kw: Any) -> str:
    return Renderer(tmp_path).render("inline", context(tmp_path, before, **kw), source=source)


def write(folder: Path, name: str, text: str) -> str:
    (folder / name).write_text(text, encoding="utf-8")
    return name


# ---------------------------------------------------------------- countdown values

COUNTDOWN = "{{ days_left }}|{{ hours_left }}|{{ minutes_left }}|{{ seconds_left }}|{{ time_left }}"


@pytest.mark.parametrize(("before", "expected"), [
    (timedelta(days=4), "4|96|5760|345600|4 days"),
    (timedelta(hours=3, minutes=30), "0|3|210|12600|3 hours 30 minutes"),
    (timedelta(seconds=45), "0|0|0|45|45 seconds"),
    (timedelta(days=4, hours=3), "4|99|5940|356400|4 days 3 hours"),
    (timedelta(days=1), "1|24|1440|86400|1 day"),
    (timedelta(hours=1, minutes=1), "0|1|61|3660|1 hour 1 minute"),
    (timedelta(minutes=2, seconds=1), "0|0|2|121|2 minutes 1 second"),
])
def test_countdown_values_are_for_the_posts_own_time(tmp_path: Path, before: timedelta,
                                                     expected: str) -> None:
    assert render(tmp_path, COUNTDOWN, before) == expected


@pytest.mark.parametrize(("before", "expected"), [
    # Only the two largest units, and only when adjacent: 1 day 0 hours 0 minutes 5
    # seconds is "1 day", never "1 day 5 seconds".
    (timedelta(days=1, seconds=5), "1 day"),
    (timedelta(days=2, minutes=59), "2 days"),
    (timedelta(days=3, hours=23, minutes=59, seconds=59), "3 days 23 hours"),  # floored
    (timedelta(hours=2, seconds=30), "2 hours"),
    (timedelta(0), "no time"),
    (timedelta(hours=-1), "no time"),                  # after the deadline: never negative
])
def test_time_left_wording(before: timedelta, expected: str) -> None:
    assert time_left(DEADLINE - before, DEADLINE) == expected


def test_countdown_never_negative() -> None:
    ctx = countdown_context(DEADLINE + timedelta(hours=1), DEADLINE)
    assert ctx["days_left"] == ctx["hours_left"] == ctx["minutes_left"] == ctx["seconds_left"] == 0


@pytest.mark.parametrize(("before", "expected"), [
    (timedelta(days=3, hours=12), "3 días y 12 horas"),
    (timedelta(days=1), "1 día"),
    (timedelta(hours=1, minutes=30), "1 hora y 30 minutos"),
    (timedelta(seconds=45), "45 segundos"),
    (timedelta(minutes=1, seconds=1), "1 minuto y 1 segundo"),
])
def test_time_left_in_spanish(tmp_path: Path, before: timedelta, expected: str) -> None:
    assert render(tmp_path, '{{ time_left_in("es") }}', before) == expected


def test_time_left_in_english_matches_time_left(tmp_path: Path) -> None:
    out = render(tmp_path, '{{ time_left_in("en") }} / {{ time_left }}', timedelta(hours=3, minutes=30))
    assert out == "3 hours 30 minutes / 3 hours 30 minutes"


def test_time_left_in_unknown_language_is_a_campaign_error(tmp_path: Path) -> None:
    with pytest.raises(CampaignError) as info:
        render(tmp_path, '{{ time_left_in("fr") }}')
    assert "'fr'" in str(info.value)
    assert info.value.line == 1


def test_due_and_deadline_are_local_times(tmp_path: Path) -> None:
    out = render(tmp_path, "{{ due.strftime('%a %H:%M %Z') }} / {{ deadline.strftime('%H:%M %Z') }}",
                 timedelta(days=4, hours=3))
    assert out == "Mon 09:00 EST / 12:00 EST"


def test_each_planned_post_counts_down_from_its_own_time(tmp_path: Path) -> None:
    # Through the whole expansion: the daily 09:00 posts from Mon 16 to Thu 19 Jan are
    # 4d3h, 3d3h, 2d3h and 1d3h before the deadline.
    (tmp_path / "campaign.toml").write_text(textwrap.dedent("""
        [campaign]
        slug = "countdown"
        deadline = 2017-01-20T12:00:00-05:00
        timezone = "America/New_York"

        [accounts.org]
        platform = "dryrun"

        [[posts]]
        key = "daily"
        template = "daily.txt.j2"
        accounts = ["org"]
        schedule = { daily = "09:00", from = "T-4d3h", until = "T-1d" }
    """), encoding="utf-8")
    write(tmp_path, "daily.txt.j2", "{{ days_left }} {{ days_left|plural('day') }}: {{ time_left }}\n")
    expansion = expand_campaign(load_campaign(tmp_path))
    assert expansion.errors == []
    assert [(p.due_at, p.text) for p in expansion.posts] == [
        (datetime(2017, 1, 16, 14, 0, tzinfo=UTC), "4 days: 4 days 3 hours"),
        (datetime(2017, 1, 17, 14, 0, tzinfo=UTC), "3 days: 3 days 3 hours"),
        (datetime(2017, 1, 18, 14, 0, tzinfo=UTC), "2 days: 2 days 3 hours"),
        (datetime(2017, 1, 19, 14, 0, tzinfo=UTC), "1 day: 1 day 3 hours"),
    ]


# ------------------------------------------------------------------------- vars


def test_vars_by_name_and_through_vars(tmp_path: Path) -> None:
    assert render(tmp_path, "{{ call_line }} = {{ vars.call_line }}") == "202-456-1111 = 202-456-1111"


def test_post_vars_override_campaign_vars(tmp_path: Path) -> None:
    out = render(tmp_path, "{{ call_line }} {{ vars.call_line }} {{ organizations }}",
                 extra={"call_line": "555-0100"})
    assert out == "555-0100 555-0100 140"


def test_a_var_cannot_hide_a_builtin_variable(tmp_path: Path) -> None:
    out = render(tmp_path, "{{ account }} {{ vars.account }} {{ days_left }} {{ vars.days_left }}",
                 timedelta(days=2), vars={"account": "someone", "days_left": 99})
    assert out == "org_x someone 2 99"


def test_builtin_variables(tmp_path: Path) -> None:
    out = render(tmp_path, "{{ campaign.slug }}|{{ campaign.title }}|{{ hashtags }}|"
                           "{{ hashtag_list|join(',') }}|{{ account }}|{{ platform }}|{{ language }}",
                 language="es")
    assert out == "potuspardon|Pardon|#POTUSpardon #HereToStay|#POTUSpardon,#HereToStay|org_x|x|es"


def test_language_defaults_to_english(tmp_path: Path) -> None:
    assert render(tmp_path, "{{ language }}") == "en"


def test_plural_filter(tmp_path: Path) -> None:
    out = render(tmp_path, "{{ 1|plural('day') }} {{ 2|plural('day') }} {{ 0|plural('day') }} "
                           "{{ 1|plural('person', 'people') }} {{ 3|plural('person', 'people') }}")
    assert out == "day days days person people"


def test_no_autoescaping_in_plain_text(tmp_path: Path) -> None:
    assert render(tmp_path, "{{ v }}", vars={"v": "<b>Tom & Jerry's</b>"}) == "<b>Tom & Jerry's</b>"


# ----------------------------------------------------------------------- tidying


def test_output_is_stripped_and_lines_lose_trailing_whitespace(tmp_path: Path) -> None:
    out = render(tmp_path, "\n\n   Hello   \n  world\t\n\n")
    assert out == "Hello\n  world"


def test_blank_line_runs_collapse_to_one(tmp_path: Path) -> None:
    assert render(tmp_path, "a\n\n\n\n\nb\n   \n  \n\nc") == "a\n\nb\n\nc"


def test_block_tags_leave_no_blank_lines(tmp_path: Path) -> None:
    source = "{% if days_left > 0 %}\n  {{ days_left }} left\n{% endif %}\n{% for h in hashtag_list %}\n{{ h }}\n{% endfor %}\n"
    assert render(tmp_path, source, timedelta(days=2)) == "2 left\n#POTUSpardon\n#HereToStay"


def test_comments_vanish(tmp_path: Path) -> None:
    assert render(tmp_path, "{# a note for editors #}\nHello {# inline #}there\n") == "Hello there"


# ------------------------------------------------------------------ template files


def test_template_file(tmp_path: Path) -> None:
    name = write(tmp_path, "post.txt.j2", "{{ time_left }} to go.\n\n{{ hashtags }}\n")
    out = Renderer(tmp_path).render(name, context(tmp_path, timedelta(days=4)))
    assert out == "4 days to go.\n\n#POTUSpardon #HereToStay"


def test_missing_template_file(tmp_path: Path) -> None:
    with pytest.raises(CampaignError) as info:
        Renderer(tmp_path).render("nope.txt.j2", context(tmp_path, timedelta(days=1)))
    assert info.value.file == "nope.txt.j2"
    assert "nope.txt.j2" in str(info.value) and "not found" in str(info.value)


def test_an_edited_inline_text_is_not_served_from_the_cache(tmp_path: Path) -> None:
    r = Renderer(tmp_path)
    ctx = context(tmp_path, timedelta(days=1))
    assert r.render("t", ctx, source="one {{ days_left }}") == "one 1"
    assert r.render("t", ctx, source="two {{ days_left }}") == "two 1"


# ------------------------------------------------------------------------ errors


def test_undefined_variable_names_file_line_and_variable(tmp_path: Path) -> None:
    name = write(tmp_path, "post.txt.j2", "{{ days_left }} days.\nCall {{ call_line }}.\n"
                                          "Ask {{ senator_name }} to act.\n{{ hashtags }}\n")
    with pytest.raises(CampaignError) as info:
        Renderer(tmp_path).render(name, context(tmp_path, timedelta(days=1)))
    e = info.value
    assert e.file == "post.txt.j2"
    assert e.line == 3
    assert "senator_name" in e.message and "undefined" in e.message
    assert str(e).startswith("post.txt.j2:3: ")


def test_undefined_variable_inside_a_block(tmp_path: Path) -> None:
    name = write(tmp_path, "post.txt.j2",
                 "Hello\n{% if days_left > 0 %}\n\n\n  {{ missing_thing }}\n{% endif %}\n")
    with pytest.raises(CampaignError) as info:
        Renderer(tmp_path).render(name, context(tmp_path, timedelta(days=1)))
    assert info.value.line == 5
    assert "missing_thing" in info.value.message


def test_undefined_variable_in_inline_text(tmp_path: Path) -> None:
    with pytest.raises(CampaignError) as info:
        Renderer(tmp_path).render("campaign.toml [posts.x.text]", context(tmp_path, timedelta(days=1)),
                                  source="line one\n{{ oops }}")
    assert info.value.file == "campaign.toml [posts.x.text]"
    assert info.value.line == 2
    assert "oops" in info.value.message


def test_undefined_attribute_of_vars_names_it(tmp_path: Path) -> None:
    with pytest.raises(CampaignError) as info:
        render(tmp_path, "ok\n{{ vars.no_such_var }}")
    assert "no_such_var" in info.value.message
    assert info.value.line == 2


def test_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    name = write(tmp_path, "bad.txt.j2", "Line one\n{{ days_left + }}\nLine three\n")
    with pytest.raises(CampaignError) as info:
        Renderer(tmp_path).render(name, context(tmp_path, timedelta(days=1)))
    assert info.value.file == "bad.txt.j2"
    assert info.value.line == 2
    assert "syntax error" in info.value.message
    assert str(info.value).startswith("bad.txt.j2:2: ")


def test_unknown_tag_names_its_line(tmp_path: Path) -> None:
    name = write(tmp_path, "bad.txt.j2", "a\nb\nc\n{% endif %}\n")
    with pytest.raises(CampaignError) as info:
        Renderer(tmp_path).render(name, context(tmp_path, timedelta(days=1)))
    assert info.value.line == 4
    assert "endif" in info.value.message


def test_syntax_error_in_inline_text(tmp_path: Path) -> None:
    with pytest.raises(CampaignError) as info:
        render(tmp_path, "fine\nfine\n{% for %}")
    assert info.value.file == "inline"
    assert info.value.line == 3


def test_runtime_error_becomes_a_campaign_error(tmp_path: Path) -> None:
    with pytest.raises(CampaignError) as info:
        render(tmp_path, "a\n{{ 1 // (days_left - days_left) }}")
    assert "ZeroDivisionError" in info.value.message
    assert info.value.line == 2


@pytest.mark.parametrize("source", [
    "{{ ''.__class__.__mro__ }}",
    "{{ ''.__class__ }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ ().__class__.__base__.__subclasses__() }}",
    "{{ vars.__class__ }}",
    "{{ time_left_in.__globals__ }}",
    "{{ time_left_in.__code__ }}",
    "{{ lipsum.__globals__ }}",
    "{{ cycler.__init__.__globals__ }}",
    "{{ namespace.__init__ }}",
    "{{ due.__class__ }}",
    "{{ ''['__class__'] }}",
    "{{ ''|attr('__class__') }}",
    "{{ '{0.__class__}'.format(1) }}",
])
def test_python_internals_are_out_of_reach(tmp_path: Path, source: str) -> None:
    with pytest.raises(CampaignError) as info:
        render(tmp_path, "Hello\n" + source)
    message = str(info.value)
    assert info.value.file == "inline"
    assert info.value.line == 2
    assert "Traceback" not in message
    assert "<class" not in message and "object at 0x" not in message
    assert "\n" not in message  # one line


@pytest.mark.parametrize("source", [
    "{% set x = [] %}{{ x.append(1) }}",
    "{% set x = [1, 2] %}{{ x.pop() }}",
    "{% set d = {} %}{{ d.update({'a': 1}) }}",
    "{{ vars.update({'call_line': 'hacked'}) }}",
    "{{ hashtag_list.clear() }}",
    "{{ vars.setdefault('x', 1) }}",
])
def test_values_cannot_be_mutated(tmp_path: Path, source: str) -> None:
    ctx = context(tmp_path, timedelta(days=1))
    with pytest.raises(CampaignError) as info:
        Renderer(tmp_path).render("inline", ctx, source=source)
    assert "not allowed" in info.value.message or "unsafe" in info.value.message
    assert "Traceback" not in str(info.value)
    assert ctx["vars"]["call_line"] == "202-456-1111"
    assert ctx["hashtag_list"] == ["#POTUSpardon", "#HereToStay"]
    assert "x" not in ctx["vars"]


def test_error_messages_are_one_line_with_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(CampaignError) as info:
        render(tmp_path, "{{ cal_line }}")
    assert "\n" not in str(info.value)
    assert "[vars]" in info.value.message  # says where a variable is defined


# ------------------------------------------- templates of text and bare variables only

_PLAIN = [
    "{{ time_left }} left. Call {{ call_line }}. {{ hashtags }}",
    "  {{ account }}:\n\n\n\n{{ organizations }} groups   \n{{ days_left }}d {{ hours_left }}h\n",
    "no variables at all",
    "{{ hashtag_list }} {{ campaign }} {{ deadline }} {{ due }} {{ days_left }}",  # not text
    "{{ vars }}",                                                            # too long inside
    "{{ range }}{{ lipsum }}",                                               # the globals
    "{{ long }}",                                                            # over the bound
    "{{ nowhere }} is not defined",                                          # undefined
    "{# a comment #}{{ account }}\n{% raw %}{{ raw }}{% endraw %}",
]


@pytest.mark.parametrize("source", _PLAIN)
def test_a_plain_template_renders_as_jinja_renders_it(tmp_path: Path, source: str) -> None:
    # `Renderer.render` renders text and bare `{{ name }}`s itself: it must give what
    # Jinja gives the same template, and leave every error to Jinja (which says where)
    from content.render import _tidy
    r = Renderer(tmp_path)
    ctx = context(tmp_path, timedelta(hours=3, minutes=30), vars={"long": "x" * 20_001})
    tpl, pieces = r._template("post", source)
    assert pieces is not None
    ours = r.env.render_plain(pieces, dict(ctx))
    try:
        theirs = r.env.render(tpl, dict(ctx))
    except Exception:
        assert ours is None
        with pytest.raises(CampaignError):
            r.render("post", dict(ctx), source=source)
    else:
        assert ours == theirs
        assert r.render("post", dict(ctx), source=source) == _tidy(theirs)


@pytest.mark.parametrize("source", [
    "{% if days_left > 1 %}{{ days_left }} days{% endif %}", "{{ account | upper }}",
    "{{ campaign.title }}", "{{ vars['call_line'] }}", "{% set a = 1 %}{{ a }}",
    "{{ 'x' ~ account }}", "{% include 'other' %}",
])
def test_anything_more_than_plain_is_left_to_jinja(tmp_path: Path, source: str) -> None:
    from content.sandbox import plain_pieces
    (tmp_path / "other").write_text("other", encoding="utf-8")
    r = Renderer(tmp_path)
    tree = r.env.parse(source)
    assert plain_pieces(tree) is None


_JINJA = [
    "{% if days_left > 1 %}{{ days_left }} {{ days_left | plural('day') }}{% else %}"
    "{{ hours_left }} hours{% endif %} - {{ account }}",
    "{% set n = days_left * 2 %}{{ n }}{% for t in hashtag_list %} {{ loop.index }}{{ t }}"
    "{% endfor %}",
    "{% macro m(x) %}<{{ x | upper }}>{% endmacro %}{{ m(account) }}{{ m(call_line) }}",
    "{% extends 'base' %}{% block body %}{{ super() }} and {{ account }}{% endblock %}",
    "{% include 'other' %} {{ vars['call_line'] }} {{ campaign.title }}",
    "{% set ns = namespace(k=0) %}{% for i in range(3) %}{% set ns.k = ns.k + i %}"
    "{% endfor %}{{ ns.k }}",
    "{% autoescape true %}{{ '<b>' }}{% endautoescape %}{{ '<b>' }}",
    # a variable set by one render must not be there for the next (3 days, then 5 hours)
    "{% if days_left > 1 %}{% set x = 'many' %}{% endif %}{{ x | default('few') }}",
]


@pytest.mark.parametrize("source", _JINJA)
def test_the_reused_context_renders_as_jinja_s_own(tmp_path: Path, source: str) -> None:
    # `BoundedEnvironment.render` copies one Jinja context per template instead of
    # building one per post: the same text as Jinja's own context, every time (nothing
    # a render sets — a variable, a block, autoescape — is left for the next one)
    from content.budget import fresh
    (tmp_path / "other").write_text("other {{ account }}", encoding="utf-8")
    (tmp_path / "base").write_text("[{% block body %}base{% endblock %}]", encoding="utf-8")
    r = Renderer(tmp_path)
    tpl, pieces = r._template("post", source)
    assert pieces is None
    for before in (timedelta(days=3), timedelta(hours=5), timedelta(days=3)):
        ctx = context(tmp_path, before)
        with fresh():
            for k, v in r.env.globals.items():
                ctx.setdefault(k, v)
            theirs = r.env.concat(tpl.root_render_func(tpl.new_context(dict(ctx), shared=True)))
        assert r.env.render(tpl, dict(ctx)) == theirs
        assert r.render("post", dict(ctx), source=source) == _tidy_of(theirs)
    # an `extends` adds the parent's blocks to the render's own lists, not the model's
    assert all(len(v) == 1 for v in r.env._contexts[tpl].blocks.values())


def _tidy_of(text: str) -> str:
    from content.render import _tidy
    return _tidy(text)


@pytest.mark.parametrize(("span", "said"), [
    (timedelta(seconds=0), "0"), (timedelta(seconds=45), "45s"),
    (timedelta(seconds=90), "1m30s"), (timedelta(seconds=119), "1m59s"),
    (timedelta(seconds=150), "3m"), (timedelta(hours=3, seconds=20), "3h"),
    (timedelta(hours=17, minutes=56, seconds=29), "17h56m"),
    (timedelta(hours=17, minutes=56, seconds=31), "17h57m"),
    (timedelta(hours=23, minutes=59, seconds=40), "1d"),
    (timedelta(days=2, hours=3, minutes=29), "2d 3h"),
    (timedelta(days=2, hours=3, minutes=31), "2d 4h"),
    (-timedelta(minutes=5), "5m"),
])
def test_about_rounds_a_span_as_a_person_says_it(span: timedelta, said: str) -> None:
    assert about(span) == said
