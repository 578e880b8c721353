"""`tminus queue import FILE.csv` (issue 13): the same checks as `queue add`, all or
nothing with the line and column of every problem, idempotent, media relative to the
CSV's folder; the example CSV imports as it is."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

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
                   'org,T-1d,' + "x" * 300 + '\n'
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
