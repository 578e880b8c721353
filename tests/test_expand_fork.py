"""Expanding a large campaign renders part of it in a forked child process
(content/expand.py, content/fork.py): the same posts, errors and warnings, in the same
order, as rendering all of it here, whether or not the posts are taken part by part to
be written as they come; a child that fails, at once or midway, leaves the rest to the
parent.

Each check runs in a fresh interpreter: the test process has threads of its own (the
test runner's), where forking is refused, so here it would never fork."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# A campaign whose expansion has everything a result holds: posts of plain and Jinja
# templates and of inline text, a thread, per-post warnings (a glued hashtag, no
# hashtag), errors in the middle of the units (a division by zero on some fire times,
# said once with how many), a repeated text, a schedule error, and times already past.
_CAMPAIGN = '''
[campaign]
slug = "forked"
title = "Forked"
deadline = 2099-01-20T12:00:00-05:00
timezone = "America/New_York"
hashtags = ["#Fork"]

[vars]
call_line = "202-555-0100"
link = "https://example.org/act"

[accounts.xa]
platform = "x"
credentials = "XA"
[accounts.xb]
platform = "x"
credentials = "XB"
[accounts.ma]
platform = "mastodon"
credentials = "MA"
[accounts.da]
platform = "dryrun"
[accounts.db]
platform = "dryrun"

[[posts]]
key = "plain"
template = "plain.txt.j2"
accounts = ["xa", "xb", "ma", "da", "db"]
schedule = { cron = "*/5 * * * *", from = "T-600m" }
expires = "1h"

[[posts]]
key = "jinja"
template = "jinja.txt.j2"
accounts = ["xa", "ma", "da"]
schedule = { cron = "*/10 * * * *", from = "T-600m" }

[[posts]]
key = "broken"
text = "x"
accounts = ["da"]
schedule = { cron = "not a cron" }

[[posts]]
key = "glued"
text = "{{ minutes_left }} min: {{ link }}#Fork"
accounts = ["db"]
schedule = { cron = "*/5 * * * *", from = "T-600m" }
thread = ["and {{ minutes_left }} more", "{% if minutes_left % 7 == 0 %}{{ 'y' * 300 }}{% else %}ok {{ minutes_left }}{% endif %}"]

[[posts]]
key = "div"
text = "{{ 100 // (minutes_left % 20) }} left #Fork"
accounts = ["da"]
schedule = { cron = "*/5 * * * *", from = "T-600m" }

[[posts]]
key = "same"
text = "Call today #Fork"
accounts = ["ma"]
schedule = { cron = "0 * * * *", from = "T-600m" }
'''

_SCRIPT = textwrap.dedent('''
    import sys
    from datetime import UTC, datetime
    from pathlib import Path
    import content.expand as expand
    from content.campaign import load_campaign

    folder, mode = Path(sys.argv[1]), sys.argv[2]
    now = datetime(2099, 1, 20, 9, tzinfo=UTC)   # some fire times are already past
    campaign = load_campaign(folder, now=now)
    expand.CHUNK = 100   # several parts from the child

    def run(fork_from, writing=False):
        expand.FORK_FROM = fork_from
        given = []
        r = expand.expand_campaign(campaign, now=now, ready=(lambda posts, _: given.extend(posts)) if writing else None)
        if writing and not r.errors:
            # what was given to write, part by part, is every post in the result's order
            assert [id(p) for p in given] == [id(p) for p in r.posts], "ready was not given the posts"
        return ([(p, p.options()) for p in r.posts],
                [(str(e), e.file, e.key, e.line, e.message) for e in r.errors], r.warnings)

    forks = []
    real = expand.Parts
    class Counted(real):
        def parts(self):
            yield from real.parts(self)
            forks.append(self.complete)
    expand.Parts = Counted
    if mode == "broken-child":
        # the child dies before it sends anything: the parent renders its share itself
        expand.Parts = type("Dying", (Counted,), {"__init__": lambda self, work:
            Counted.__init__(self, lambda: (_ for _ in ()).throw(SystemExit(3)))})
    if mode == "dies-midway":
        # the child sends two parts, then dies: the parent renders the rest itself
        def midway(work):
            def two():
                for n, part in enumerate(work()):
                    if n == 2:
                        raise SystemExit(3)
                    yield part
            return two
        expand.Parts = type("Midway", (Counted,), {"__init__": lambda self, work:
            Counted.__init__(self, midway(work))})
    here = run(10**9)
    forked = run(1)
    writing = run(1, writing=True)
    assert forks == [mode == "forked"] * 2, forks
    assert len(here[0]) > 500 and here[2], (len(here[0]), here[2])
    assert any("ZeroDivisionError" in e[0] and "the same for" in e[0] for e in here[1]), here[1]
    assert any("same text goes out" in e[0] for e in here[1]), here[1]
    assert any("schedule" in (e[1] or "") + (e[2] or "") for e in here[1]), here[1]
    assert forked == here, "the forked expansion differs"
    assert writing == here, "the forked expansion, written as it comes, differs"
    if mode == "forked":
        # without the posts in error, every post is given to be written, in order
        import dataclasses
        campaign = dataclasses.replace(campaign, posts=tuple(
            p for p in campaign.posts if p.key in ("plain", "jinja")))
        assert not run(1, writing=True)[1]
    print("same", len(here[0]), len(here[1]), len(here[2]))
''')


def _campaign(tmp_path: Path) -> Path:
    folder = tmp_path / "c"
    folder.mkdir()
    (folder / "campaign.toml").write_text(_CAMPAIGN, encoding="utf-8")
    (folder / "plain.txt.j2").write_text("{{ account }}: {{ minutes_left }} min ({{ time_left }}) "
                                         "left. Call {{ call_line }} #Fork\n", encoding="utf-8")
    (folder / "jinja.txt.j2").write_text(
        "{% if hours_left > 24 %}{{ days_left }} {{ days_left | plural('day') }}{% else %}"
        "{{ hours_left }} hours{% endif %} ({{ minutes_left }} min) - {{ account }}\n",
        encoding="utf-8")
    return folder


def _run(folder: Path, mode: str) -> str:
    done = subprocess.run([sys.executable, "-c", _SCRIPT, str(folder), mode], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_a_forked_expansion_is_the_same_as_one_done_here(tmp_path: Path) -> None:
    out = _run(_campaign(tmp_path), "forked")
    assert out.startswith("same ")


def test_a_child_that_dies_leaves_its_half_to_the_parent(tmp_path: Path) -> None:
    out = _run(_campaign(tmp_path), "broken-child")
    assert out.startswith("same ")


def test_a_child_that_dies_midway_leaves_the_rest_to_the_parent(tmp_path: Path) -> None:
    out = _run(_campaign(tmp_path), "dies-midway")
    assert out.startswith("same ")
