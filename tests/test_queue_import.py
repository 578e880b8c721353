"""`tminus queue import FILE.csv` (issue 13): the same checks as `queue add`, all or
nothing with the line and column of every problem, idempotent, media relative to the
CSV's folder; the example CSV imports as it is. A row is known by its account and its
time as written: a corrected export edits its posts (back to draft), never adds twins."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from content.csvposts import read_posts
from scheduler import cli as cli_module
from tests.conftest import ROOT, CampaignFactory, CliResult, simple_toml

Cli = Callable[..., CliResult]
PNG = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000"
                    "1f15c4890000000d4944415478da63f8cfc0f01f0005000201a5f1b7a4"
                    "0000000049454e44ae426082")


def _posts(cli: Cli) -> list[dict[str, object]]:
    return json.loads(cli("list", "--json").out)  # type: ignore[no-any-return]


def test_import_is_all_or_nothing_with_line_and_column(
        cli: Cli, make_campaign: CampaignFactory, tmp_path: Path) -> None:
    assert cli("plan", str(make_campaign(simple_toml()))).code == 0
    before = len(_posts(cli))
    csv = tmp_path / "posts.csv"
    csv.write_text('account,at,text\n'
                   'org,T-1d,"Fine, with a comma. #TestTag"\n'
                   'nobody,T-1d,hi\n'
                   'org,2026-01-01T09:00,too early\n'
                   'org,T-2d,' + "x" * 300 + '\n'
                   'org,T-3h,\n', encoding="utf-8")
    r = cli("queue", "import", str(csv))
    assert r.code == 2
    problems = [ln for ln in r.err.splitlines() if ln.startswith("error:")]
    assert problems == [
        f"error: {csv}:3 [account]: 'nobody' is unknown; known accounts: org, partner",
        f"error: {csv}:4 [at]: " + problems[1].split("[at]: ", 1)[1],
        f"error: {csv}:5 [text]: 300 weighted chars is over dryrun's limit of 280; shorten the text",
        f"error: {csv}:6 [text]: is empty"]
    assert "more than 3650d (ten years) from the deadline" in problems[1]
    assert "4 problem(s); nothing was written." in r.err
    assert len(_posts(cli)) == before


def test_import_twice_adds_once_and_media_is_next_to_the_csv(
        cli: Cli, make_campaign: CampaignFactory, tmp_path: Path) -> None:
    assert cli("plan", str(make_campaign(simple_toml()))).code == 0
    folder = tmp_path / "export"
    folder.mkdir()
    (folder / "poster.png").write_bytes(PNG)
    csv = folder / "posts.csv"
    csv.write_text("\ufeffAccount,At,Text,Media,Alt,Expires,Language\n"
                   "org,T-1d,A poster. #TestTag,poster.png,The Owl bus at night,30m,en\n"
                   "partner,2099-01-19T18:00,Evening call. #TestTag,,,,\n", encoding="utf-8")
    r = cli("queue", "import", str(csv), "--by", "ana")
    assert r.code == 0, r.err
    assert "imported 2 post(s)" in r.out and "at Mon 19 Jan 2099 18:00 EST" in r.out
    again = cli("queue", "import", str(csv), "--by", "ana")
    assert again.code == 0 and "imported 0 post(s)" in again.out and "2 already imported" in again.out
    imported = [p for p in _posts(cli) if str(p["text"]).startswith(("A poster", "Evening"))]
    assert len(imported) == 2 and {p["state"] for p in imported} == {"queued"}
    log = cli("log", str(imported[0]["id"])).out
    assert "approved by ana" in log


def test_media_outside_the_folder_or_missing_is_refused(
        cli: Cli, make_campaign: CampaignFactory, tmp_path: Path) -> None:
    assert cli("plan", str(make_campaign(simple_toml()))).code == 0
    csv = tmp_path / "posts.csv"
    csv.write_text("account,at,text,media,alt\n"
                   "org,T-1d,One. #TestTag,../secret.png,x\n"
                   "org,T-2d,Two. #TestTag,missing.png,x\n"
                   "org,T-3d,Three. #TestTag,poster.png,\n", encoding="utf-8")
    r = cli("queue", "import", str(csv))
    assert r.code == 2
    assert f"{csv}:2 [media]" in r.err and "names starting with a dot" in r.err
    assert f"{csv}:3 [media]: image 'missing.png' not found" in r.err
    assert f"{csv}:4 [alt]: is empty: an image needs alt text" in r.err


def test_a_broken_csv_is_a_clear_error(cli: Cli, tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"account,at,text\n\xff\xfe,now,x\n")
    r = cli("queue", "import", str(bad))
    assert r.code == 2 and f"{bad}:2: is not UTF-8" in r.err
    bad.write_text("acount,at,text\n", encoding="utf-8")
    r = cli("queue", "import", str(bad))
    assert "[acount]: unknown column 'acount'" in r.err and "the column 'account' is missing" in r.err


def test_the_example_csv_imports_as_it_is(cli: Cli) -> None:
    folder = ROOT / "examples" / "petition"
    assert cli("plan", str(folder)).code == 0
    r = cli("queue", "import", str(folder / "extra-posts.csv"))
    assert r.code == 0, r.err
    assert "imported 3 post(s)" in r.out


# -- a row's identity: its account and its time as written ------------------------------------

ROWS = ("account,at,text,expires\n"
        "org,T-1d,Call 202-555-0100 today. #TestTag,2h\n"
        "partner,2099-01-19T18:00,Evening call. #TestTag,\n")


def _imported(cli: Cli, make_campaign: CampaignFactory, tmp_path: Path) -> tuple[Path, int]:
    """The CSV imported and approved (`--by`); the file and the id of its first row's post."""
    assert cli("plan", str(make_campaign(simple_toml()))).code == 0
    csv = tmp_path / "posts.csv"
    csv.write_text(ROWS, encoding="utf-8")
    r = cli("queue", "import", str(csv), "--by", "ana")
    assert r.code == 0, r.err
    first = next(p for p in _posts(cli) if str(p["text"]).startswith("Call 202"))
    return csv, int(str(first["id"]))


def test_a_corrected_row_edits_its_post_back_to_draft_not_a_second_post(
        cli: Cli, make_campaign: CampaignFactory, tmp_path: Path) -> None:
    csv, post = _imported(cli, make_campaign, tmp_path)
    count = len(_posts(cli))
    csv.write_text(ROWS.replace("today", "tonight"), encoding="utf-8")
    r = cli("queue", "import", str(csv))
    assert r.code == 0, r.err
    assert (f"post {post} (line 2) has a new text; it is a draft (it was queued: back to draft):"
            in r.out)
    assert "  -Call 202-555-0100 today. #TestTag" in r.out
    assert "  +Call 202-555-0100 tonight. #TestTag" in r.out
    assert f"imported 0 post(s) from {csv}; 1 changed (back to draft); 1 already imported" in r.out
    assert "next: tminus preview testcamp, then tminus approve testcamp" in r.out
    posts = _posts(cli)
    assert len(posts) == count                                   # not a second post
    edited = next(p for p in posts if p["id"] == post)
    assert (edited["state"], edited["text"]) == ("draft", "Call 202-555-0100 tonight. #TestTag")
    log = cli("log", str(post)).out
    assert f"re-imported from {csv} line 2 by" in log and "queued → draft" in log
    # the corrected file once more: nothing left to change
    again = cli("queue", "import", str(csv)).out
    assert "imported 0 post(s)" in again and "2 already imported" in again and "changed" not in again


def test_a_reimport_with_an_edit_and_a_bad_row_writes_nothing(
        cli: Cli, make_campaign: CampaignFactory, tmp_path: Path) -> None:
    csv, _ = _imported(cli, make_campaign, tmp_path)
    before = _posts(cli)
    csv.write_text(ROWS.replace("today", "tonight") + "nobody,T-2d,Hello. #TestTag,\n",
                   encoding="utf-8")
    r = cli("queue", "import", str(csv))
    assert r.code == 2 and f"{csv}:4 [account]: 'nobody' is unknown" in r.err
    assert _posts(cli) == before                                 # the edit is not kept either


def test_a_row_twice_or_a_sent_post_changed_is_refused_with_its_line_and_column(
        cli: Cli, make_campaign: CampaignFactory, tmp_path: Path) -> None:
    csv, post = _imported(cli, make_campaign, tmp_path)
    before = _posts(cli)
    csv.write_text(ROWS.replace(",2h\n", ",30m\n")
                   + "org,T-2d,One. #TestTag,\norg,t-2D,Two. #TestTag,\n", encoding="utf-8")
    r = cli("queue", "import", str(csv))
    assert r.code == 2
    assert (f"{csv}:5 [at]: the same account and time as line 4: a row is known by them; "
            "give each post its own time") in r.err
    assert _posts(cli) == before                  # line 2's new expiry is not kept either
    assert cli("cancel", "--post", str(post)).code == 0
    for rows, column, what in [(ROWS.replace("today", "tonight"), "text", "text"),
                               (ROWS.replace(",2h\n", ",30m\n"), "expires", "expiry")]:
        csv.write_text(rows, encoding="utf-8")
        r = cli("queue", "import", str(csv))
        assert r.code == 2
        assert (f"{csv}:2 [{column}]: differs from post {post}, imported from this row before, "
                f"which is canceled now: its {what} can no longer change") in r.err


def _options(tmp_path: Path, post: int) -> tuple[str, dict[str, object], str]:
    engine = sa.create_engine(f"sqlite:///{tmp_path}/tminus.db")
    with engine.connect() as c:
        state, options, not_after = c.execute(
            sa.text("SELECT state, options, not_after FROM post WHERE id = :i"), {"i": post}).one()
    engine.dispose()
    return state, json.loads(options), str(not_after)


def test_a_changed_image_alt_text_language_or_expiry_edits_the_post_back_to_draft(
        cli: Cli, make_campaign: CampaignFactory, tmp_path: Path) -> None:
    """As a new text does: the post is changed, back to draft with what changed, to
    approve again; never a second post. Each in turn, then all at once with the text."""
    assert cli("plan", str(make_campaign(simple_toml()))).code == 0
    (tmp_path / "a.png").write_bytes(PNG)
    (tmp_path / "b.png").write_bytes(PNG)
    csv = tmp_path / "posts.csv"
    row = ("account,at,text,media,alt,language,expires\n"
           "org,T-1d,A poster. #TestTag,{},{},{},{}\n")
    csv.write_text(row.format("a.png", "The Owl bus", "en", "2h"), encoding="utf-8")
    assert cli("queue", "import", str(csv), "--by", "ana").code == 0
    post = next(int(str(p["id"])) for p in _posts(cli) if p["text"] == "A poster. #TestTag")
    count = len(_posts(cli))
    for values, what, lines in [
            (("b.png", "The Owl bus", "en", "2h"), "image", ["-media: a.png", "+media: b.png"]),
            (("b.png", "A bus", "en", "2h"), "alt text", ["-alt: The Owl bus", "+alt: A bus"]),
            (("b.png", "A bus", "es", "2h"), "language", ["-language: en", "+language: es"]),
            (("b.png", "A bus", "es", "30m"), "expiry",
             ["-expires: until Mon 19 Jan 2099 14:00 EST", "+expires: until Mon 19 Jan 2099 12:30 EST"])]:
        csv.write_text(row.format(*values), encoding="utf-8")
        r = cli("queue", "import", str(csv))
        assert r.code == 0, r.err
        assert (f"post {post} (line 2) has a new {what}; it is a draft (it was queued: back to "
                "draft):") in r.out
        assert [f"  {line}" for line in lines] == [ln for ln in r.out.splitlines()
                                                   if ln.startswith(("  -", "  +"))]
        assert "1 changed (back to draft)" in r.out and len(_posts(cli)) == count
        assert "already imported" in cli("queue", "import", str(csv)).out   # as it is now
        assert cli("approve", "testcamp", "--post", str(post), "--by", "ana").code == 0
    state, options, not_after = _options(tmp_path, post)
    assert state == "queued" and options["language"] == "es"     # approved again, last
    assert [(Path(str(m["path"])).name, m["alt"]) for m in options["media"]] == [  # type: ignore[attr-defined]
        ("b.png", "A bus")]
    assert not_after.startswith("2099-01-19 17:30")            # 12:30 EST, in UTC
    log = cli("log", str(post)).out
    assert "+language: es" in log and f"re-imported from {csv} line 2 by" in log
    # the text and the image at once: one change, both said
    csv.write_text(row.format("a.png", "A bus", "es", "30m").replace("A poster.", "A new poster."),
                   encoding="utf-8")
    r = cli("queue", "import", str(csv))
    assert r.code == 0 and f"post {post} (line 2) has a new text and image; it is a draft (" in r.out
    assert "  +A new poster. #TestTag" in r.out and "  +media: a.png" in r.out
    assert "its image too" in cli("log", str(post)).out
    # an image taken out of the row: the post goes without one
    csv.write_text("account,at,text,language,expires\norg,T-1d,A new poster. #TestTag,es,30m\n",
                   encoding="utf-8")
    r = cli("queue", "import", str(csv))
    assert r.code == 0 and "  -media: a.png" in r.out and "  +media: none" in r.out
    assert "media" not in _options(tmp_path, post)[1]
    # the same export saved into another folder: the same image, nothing changes
    csv.write_text(row.format("a.png", "The Owl bus", "en", "2h"), encoding="utf-8")
    assert cli("queue", "import", str(csv)).code == 0
    moved = tmp_path / "download"
    moved.mkdir()
    (moved / "a.png").write_bytes(PNG)
    (moved / "posts.csv").write_text(row.format("a.png", "The Owl bus", "en", "2h"), encoding="utf-8")
    assert "1 already imported" in cli("queue", "import", str(moved / "posts.csv")).out


def test_a_post_imported_under_the_old_content_key_is_still_found(
        cli: Cli, make_campaign: CampaignFactory, tmp_path: Path) -> None:
    csv, post = _imported(cli, make_campaign, tmp_path)
    rows, _ = read_posts(csv)
    engine = sa.create_engine(f"sqlite:///{tmp_path}/tminus.db")
    with engine.begin() as c:     # as a post imported before identity was (account, at)
        c.execute(sa.text("UPDATE post SET plan_key = :k WHERE id = :i"),
                  {"k": rows[0].content_key, "i": post})
    engine.dispose()
    r = cli("queue", "import", str(csv))
    assert r.code == 0 and "imported 0 post(s)" in r.out and "2 already imported" in r.out


def test_a_long_import_shows_the_first_posts_and_every_warning_not_a_line_each(
        cli: Cli, make_campaign: CampaignFactory, tmp_path: Path) -> None:
    """30 rows: 20 lines of new posts, then how many more; a post with a warning (no
    campaign hashtag) is shown, with it, wherever it is in the file."""
    assert cli("plan", str(make_campaign(simple_toml()))).code == 0
    before = len(_posts(cli))
    rows = [f"org,T-{n + 2}h,Post number {n} #TestTag" for n in range(29)]
    rows.insert(25, "org,T-40h,The one without the tag")
    csv = tmp_path / "many.csv"
    csv.write_text("account,at,text\n" + "\n".join(rows) + "\n", encoding="utf-8")
    r = cli("queue", "import", str(csv))
    assert r.code == 0, r.err
    shown = [ln for ln in r.out.splitlines() if ln.startswith("post ")]
    assert len(shown) == 21 and shown[-1].endswith(", 23/280")    # the tagless one, 26th
    assert "warning: none of the campaign's hashtags is in this post" in r.out
    assert "… and 9 more new post(s): `tminus list` shows them all" in r.out
    assert "imported 30 post(s)" in r.out and len(_posts(cli)) == before + 30


def test_a_long_list_of_problems_is_capped_on_a_terminal_and_whole_elsewhere(
        cli: Cli, make_campaign: CampaignFactory, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """30 empty texts: a terminal shows the first 20 and how to see every one; with the
    errors going to a file or pipe (as in this test, or `2> problems.txt`) all 30."""
    assert cli("plan", str(make_campaign(simple_toml()))).code == 0
    csv = tmp_path / "posts.csv"
    csv.write_text("account,at,text\n" + "".join(f"org,T-{n}h,\n" for n in range(1, 31)),
                   encoding="utf-8")
    r = cli("queue", "import", str(csv))
    assert r.code == 2 and sum(ln.startswith("error:") for ln in r.err.splitlines()) == 30
    assert "more problem(s)" not in r.err and "30 problem(s); nothing was written." in r.err
    monkeypatch.setattr(cli_module, "_on_terminal", lambda: True)
    r = cli("queue", "import", str(csv))
    lines = r.err.splitlines()
    assert r.code == 2 and sum(ln.startswith("error:") for ln in lines) == 20
    assert lines[19] == f"error: {csv}:21 [text]: is empty"
    assert lines[20] == ("… and 10 more problem(s); to see every one, write them to a file: "
                         f"`tminus queue import {csv} 2> problems.txt`")
    assert lines[21] == "30 problem(s); nothing was written."


def test_an_import_reads_the_database_a_fixed_number_of_times(
        cli: Cli, make_campaign: CampaignFactory, tmp_path: Path) -> None:
    """The accounts, campaigns and live posts are read once per import, not per row:
    40 rows cost the queries 10 rows do (it was three a row), and the posts are all
    there, written in one INSERT, each with its first event (written in one insert)."""
    from scheduler.db import make_engine
    from scheduler.service.imports import import_csv
    assert cli("plan", str(make_campaign(simple_toml()))).code == 0
    engine = make_engine(f"sqlite:///{tmp_path}/tminus.db")
    statements: list[str] = []
    sa.event.listen(engine, "before_cursor_execute",
                    lambda *args: statements.append(" ".join(args[2].split()[:3])))
    counts = []
    for n, rows in enumerate((10, 40)):
        csv = tmp_path / f"posts{n}.csv"
        csv.write_text("account,at,text\n" + "".join(
            f"org,T-{n}d{i}m,Import {n} row {i} #TestTag\n" for i in range(1, rows + 1)),
            encoding="utf-8")
        statements.clear()
        r = import_csv(engine, csv, by=None, author="ana", now=datetime.now(UTC))
        assert len(r.added) == rows and len({q.post_id for q in r.added}) == rows
        counts.append(sum(st.startswith("SELECT") for st in statements))
        assert statements.count("INSERT INTO post") == 1, statements
    assert counts[0] == counts[1], counts
    with engine.connect() as c:
        firsts = c.execute(sa.text("SELECT count(*) FROM event WHERE from_state IS NULL "
                                   "AND actor = 'ana'")).scalar()
    assert firsts == 50
    engine.dispose()


def test_warnings_are_capped_on_a_terminal_as_errors_are(
        cli: Cli, make_campaign: CampaignFactory, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """30 posts without the campaign's hashtag: a terminal shows 20 warnings and where
    to see every one (the import is done: running it again would show none); output to
    a file or a pipe has all 30."""
    assert cli("plan", str(make_campaign(simple_toml()))).code == 0
    for n, terminal in enumerate((False, True)):
        csv = tmp_path / f"posts{n}.csv"
        csv.write_text("account,at,text\n" + "".join(
            f"org,T-{n + 1}d{i}m,Untagged {n} post {i}\n" for i in range(1, 31)), encoding="utf-8")
        monkeypatch.setattr(cli_module, "_on_terminal", lambda *_, t=terminal: t)
        r = cli("queue", "import", str(csv))
        assert r.code == 0, r.err
        warned = [ln for ln in r.out.splitlines() if ln.startswith("warning: none of the campaign")]
        assert len(warned) == (20 if terminal else 30)
        more = "… and 10 more warning(s): `tminus preview testcamp` shows every post with its warnings"
        assert (more in r.out) == terminal
        assert "imported 30 post(s)" in r.out


def test_an_approved_import_on_both_databases(any_engine: sa.Engine, make_campaign: CampaignFactory,
                                               tmp_path: Path) -> None:
    """The posts written in one INSERT are read back as the rows they are, and approved."""
    from scheduler.db import session
    from scheduler.models import Event, Post
    from scheduler.planner import plan
    from scheduler.service.imports import import_csv
    now = datetime.now(UTC)
    plan(any_engine, make_campaign(simple_toml()), now=now)
    csv = tmp_path / "posts.csv"
    csv.write_text("account,at,text,language\n" + "".join(
        f"{'org' if i % 2 else 'partner'},T-1d{i}m,Row {i} #TestTag,en\n" for i in range(1, 13)),
        encoding="utf-8")
    r = import_csv(any_engine, csv, by="Ana", author="ana", now=now)
    assert [q.state for q in r.added] == ["queued"] * 12
    with session(any_engine) as s:
        posts = {p.id: p for p in s.exec(sa.select(Post).where(  # type: ignore[call-overload]
            Post.post_key == "adhoc")).scalars()}
        assert sorted(posts) == sorted(q.post_id for q in r.added)
        for q in r.added:
            p = posts[q.post_id]
            assert (p.approved_by, p.account_id is not None, p.options) == ("Ana", True, {"language": "en"})
            assert p.text == f"Row {q.post_id - min(posts) + 1} #TestTag"
        events = s.exec(sa.select(Event.to_state).where(  # type: ignore[call-overload]
            Event.post_id.in_(posts))).scalars().all()   # type: ignore[attr-defined]
    assert sorted(events) == ["draft"] * 12 + ["queued"] * 12


def test_a_row_is_known_across_files_but_a_time_from_now_is_always_a_new_post(
        cli: Cli, make_campaign: CampaignFactory, tmp_path: Path) -> None:
    """An edited export saved under another name is the same rows (account and campaign
    time); `now` and `+10m` name another instant at each import: never a match for a
    post an earlier import made at its own "now"."""
    _, post = _imported(cli, make_campaign, tmp_path)
    renamed = tmp_path / "posts (2).csv"
    renamed.write_text(ROWS.replace("today", "at noon"), encoding="utf-8")
    r = cli("queue", "import", str(renamed))
    assert r.code == 0 and f"post {post} (line 2) has a new text" in r.out, r.err
    assert "1 changed (back to draft); 1 already imported" in r.out
    soon = tmp_path / "soon.csv"
    soon.write_text("account,at,text\norg,+2h,Doors open soon. #TestTag\n", encoding="utf-8")
    assert "imported 1 post(s)" in cli("queue", "import", str(soon)).out
    count = len(_posts(cli))
    soon.write_text("account,at,text\norg,+2h,Doors open now. #TestTag\n", encoding="utf-8")
    r = cli("queue", "import", str(soon))
    assert r.code == 0 and "imported 1 post(s)" in r.out and "changed" not in r.out, r.err
    assert len(_posts(cli)) == count + 1                      # a second post, not an edit
    r = cli("queue", "import", str(soon))                     # the same text again: a repeat
    problems = [ln for ln in r.err.splitlines() if ln.startswith("error:")]
    assert r.code == 2 and len(problems) == 1
    assert f"{soon}:2 [text]" in r.err and "is already post" in r.err
    assert len(_posts(cli)) == count + 1
