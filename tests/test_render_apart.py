"""A text rendered once for the accounts alike in everything else (`content.render`
`Renderer.render_apart`, used by `content.expand`) gives, post for post, what rendering
each post on its own gives: the same posts, errors and warnings, in the same order, on
a campaign with every feature a template can use, and with templates that do more with
the account than print it (those are rendered post by post)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jinja2
import pytest

import content.expand as expand
from content import limits as L
from content.campaign import load_campaign
from content.render import Renderer
from content.sandbox import only_printed

_CAMPAIGN = '''
[campaign]
slug = "apart"
title = "Apart"
deadline = 2099-01-20T12:00:00-05:00
timezone = "America/New_York"
hashtags = ["#Apart", "#HereToStay"]

[vars]
call_line = "202-555-0100"
link = "https://example.org/act"
handle = "@Decider"
count = 3

[accounts.x_a]
platform = "x"
credentials = "XA"
[accounts.x_longer_name]
platform = "x"
credentials = "XB"
[accounts.x_es]
platform = "x"
credentials = "XC"
language = "es"
[accounts.ma]
platform = "mastodon"
credentials = "MA"
[accounts.mb]
platform = "mastodon"
credentials = "MB"
language = "es"
[accounts.ba]
platform = "bluesky"
credentials = "BA"
[accounts.da]
platform = "dryrun"
[accounts.db_with_a_long_name_of_many_letters]
platform = "dryrun"

[[posts]]
key = "plain"
template = "plain.txt.j2"
accounts = ["x_a", "x_longer_name", "x_es", "ma", "mb", "ba", "da", "db_with_a_long_name_of_many_letters"]
schedule = { cron = "0 * * * *", from = "T-30h" }
expires = "1h"

[[posts]]
key = "variants"
template = "variants.txt.j2"
accounts = ["x_a", "x_longer_name", "x_es", "ma", "mb", "ba", "da"]
schedule = { cron = "30 */2 * * *", from = "T-30h" }

[[posts]]
key = "variants-again"
template = "variants.txt.j2"
accounts = ["da", "db_with_a_long_name_of_many_letters"]
schedule = { cron = "30 */2 * * *", from = "T-30h" }
vars = { count = 4 }

[[posts]]
key = "looped"
template = "looped.txt.j2"
accounts = ["ma", "ba", "da"]
schedule = { cron = "15 */3 * * *", from = "T-30h" }

[[posts]]
key = "compared"
template = "compared.txt.j2"
accounts = ["x_a", "x_longer_name", "ma", "da"]
schedule = { cron = "45 */3 * * *", from = "T-30h" }

[[posts]]
key = "included"
template = "included.txt.j2"
accounts = ["ma", "ba"]
schedule = { cron = "10 */4 * * *", from = "T-30h" }

[[posts]]
key = "thread"
text = "{{ account }}: {{ time_left }} left to call {{ call_line }} #Apart"
accounts = ["ma", "mb", "ba", "da"]
schedule = { cron = "20 */4 * * *", from = "T-30h" }
thread = ["{{ 'Long words to make a thread. ' * 8 }}{{ account }} {{ minutes_left }}", "{{ time_left_in(language) }} — {{ handle }} {{ link }}#Apart"]
language = "es"

[[posts]]
key = "same-everywhere"
text = "Call {{ call_line }} now, {{ hours_left }} hours #Apart"
accounts = ["x_a", "x_longer_name", "ma"]
schedule = { at = "T-3h" }

[[posts]]
key = "too-long-for-some"
text = "{{ 'y' * 19990 }}{{ account }}"
accounts = ["x_a", "x_longer_name", "da"]
schedule = { at = "T-2h" }

[[posts]]
key = "failing"
text = "{{ 100 // (hours_left % 5) }} left {{ account }} #Apart"
accounts = ["ma", "da"]
schedule = { cron = "5 * * * *", from = "T-12h" }
'''

_TEMPLATES = {
    "plain.txt.j2": "{{ account }}: {{ minutes_left }} minutes ({{ time_left }}) left.\n"
                    "Call {{ call_line }} today. {{ hashtags }}\n",
    # per-platform and per-language variants, a filter, a mention, a link, a glued tag
    "variants.txt.j2": (
        "{% set who = handle if platform == 'x' else 'the Decider' %}\n"
        "{% if language == 'es' %}\n"
        "Quedan {{ time_left_in('es') }}: {{ account }} pide a {{ who }} que firme.\n"
        "{% else %}\n"
        "{{ days_left }} {{ days_left|plural('day') }} left: {{ account }} asks {{ who }} "
        "to sign, {{ count }} times.\n"
        "{% endif %}\n"
        "{% if hours_left % 4 == 0 %}{{ link }}#Apart{% else %}{{ link }} {{ hashtags }}{% endif %}\n"),
    # the account printed in a loop, and as it is among other values
    "looped.txt.j2": "{% for tag in hashtag_list %}{{ account }} {{ tag }}\n{% endfor %}"
                     "{{ hours_left }} h {{ account }}{{ account }}\n",
    # the account compared and filtered: every post rendered on its own
    "compared.txt.j2": "{% if account == 'x_a' %}First {% endif %}{{ account|upper }} "
                       "{{ minutes_left }} #Apart\n",
    # another template sees the account too: every post rendered on its own
    "included.txt.j2": "{{ account }} {% include 'footer.txt.j2' %}\n",
    "footer.txt.j2": "{{ account|length }} {{ minutes_left }} {{ hashtags }}",
}


def _folder(tmp_path: Path) -> Path:
    folder = tmp_path / "apart"
    folder.mkdir()
    (folder / "campaign.toml").write_text(_CAMPAIGN, encoding="utf-8")
    for name, text in _TEMPLATES.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def _expanded(folder: Path, apart: bool, monkeypatch: pytest.MonkeyPatch,
              now: datetime = datetime(2099, 1, 19, 13, tzinfo=UTC)) -> tuple[Any, Any, Any]:
    """(some fire times are past at the default `now`)"""
    monkeypatch.setattr(expand, "APART", apart)
    r = expand.expand_campaign(load_campaign(folder, now=now), now=now)
    return ([(p, p.options()) for p in r.posts],
            [(str(e), e.file, e.key, e.line, e.message) for e in r.errors], r.warnings)


def test_rendered_apart_the_posts_errors_and_warnings_are_the_same(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = _folder(tmp_path)
    used: list[bool] = []
    real = Renderer.render_apart

    def counted(self: Renderer, *args: object, **kwargs: object) -> object:
        got = real(self, *args, **kwargs)  # type: ignore[arg-type]
        used.append(got is not None)
        return got

    monkeypatch.setattr(Renderer, "render_apart", counted)
    shared = _expanded(folder, True, monkeypatch)
    assert any(used) and not all(used), "both ways were not taken"
    one_by_one = _expanded(folder, False, monkeypatch)
    posts, errors, warnings = shared
    said = [w for p, _ in posts for w in p.warnings]
    assert len(posts) > 300 and warnings and said, (len(posts), warnings)
    texts = {p.post_key: p.text for p, _ in posts}
    assert texts["compared"].startswith(("First X_A ", "MA ", "DA ", "X_LONGER_NAME "))
    assert any("ZeroDivisionError" in e[0] for e in errors), errors
    assert any("identical text on X accounts" in e[0] for e in errors), errors
    # 19,990 y's and a name of 3 letters fit in a text; a name of 13 does not
    assert any(f"longer than {L.MAX_TEXT_CHARS:,}" in e[0] for e in errors), errors
    assert any(p.post_key == "too-long-for-some" and p.account == "x_a" for p, _ in posts)
    assert any("runs into #Apart" in w for w in said), said
    assert any(w == expand.NO_HASHTAG for w in said), said
    assert shared == one_by_one


def test_the_potuspardon_example_is_the_same_rendered_apart(monkeypatch: pytest.MonkeyPatch) -> None:
    folder = Path(__file__).resolve().parent.parent / "examples" / "potuspardon"
    now = datetime(2017, 1, 15, tzinfo=UTC)
    assert _expanded(folder, True, monkeypatch, now) == _expanded(folder, False, monkeypatch, now)


@pytest.mark.parametrize(("source", "alone"), [
    ("{{ account }} {{ minutes_left }}", True),
    ("{% if x %}{{ account }}{% endif %}{% for i in range(3) %}{{ account }}{% endfor %}", True),
    ("{{ account|upper }}", False),
    ("{{ account ~ '!' }}", False),
    ("{% if account %}yes{% endif %}", False),
    ("{% set account = 'other' %}{{ account }}", False),
    ("{% for account in names %}{{ account }}{% endfor %}", False),
    ("{% filter upper %}{{ account }}{% endfilter %}", False),
    ("{% set said %}{{ account }}{% endset %}{{ said|length }}", False),
    ("{% macro m() %}{{ account }}{% endmacro %}{{ m() }}", False),
    ("{{ self }} {{ account }}", True),
])
def test_only_a_template_that_prints_the_account_as_it_is_is_rendered_apart(
        source: str, alone: bool) -> None:
    env = jinja2.Environment()
    assert only_printed(env.parse(source), "account") is alone
