"""Images are checked at validation, against every platform a post goes to (the
registry's media limits): there, readable, a type the platform takes by its bytes,
within size, count and alt text length."""

from __future__ import annotations

from pathlib import Path

import pytest

from content.errors import CampaignErrors
from content.media import sniff
from scheduler.planner import check
from tests.conftest import CampaignFactory, simple_toml

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(32)
ACCOUNTS = """
    [accounts.org]
    platform = "dryrun"

    [accounts.sky]
    platform = "bluesky"
    credentials = "SKY"

    [accounts.bird]
    platform = "x"
    credentials = "BIRD"
"""


def _errors(make_campaign: CampaignFactory, media: str, files: dict[str, bytes],
            accounts: str = '["sky", "bird"]') -> list[str]:
    folder = make_campaign(simple_toml(accounts=ACCOUNTS, posts=f"""
        [[posts]]
        key = "poster"
        text = "See the poster #TestTag"
        accounts = {accounts}
        schedule = {{ at = "T-1d" }}
        media = {media}
    """))
    for name, data in files.items():
        (folder / name).write_bytes(data)
    try:
        check(folder, now=None)
    except CampaignErrors as e:
        return [str(x) for x in e.errors]
    return []


def test_a_good_image_passes(make_campaign: CampaignFactory) -> None:
    assert _errors(make_campaign, '[{ path = "a.png", alt = "a poster" }]', {"a.png": PNG}) == []


@pytest.mark.parametrize(("media", "files", "expected"), [
    ('[{ path = "gone.png", alt = "a poster" }]', {}, "image 'gone.png' not found"),
    ('[{ path = "notes.png", alt = "a poster" }]', {"notes.png": b"just notes, not a picture"},
     "image 'notes.png' is not a PNG, JPEG, GIF or WebP image (by its bytes)"),
    ('[{ path = "big.png", alt = "a poster" }]', {"big.png": PNG + bytes(1_000_000)},
     "bluesky takes at most 1,000,000"),
    ("[" + ", ".join(['{ path = "a.png", alt = "a poster" }'] * 5) + "]", {"a.png": PNG},
     "5 images, but bluesky takes at most 4 per post"),
    ('[{ path = "a.png", alt = "' + "a" * 1001 + '" }]', {"a.png": PNG},
     "the alt text of 'a.png' is 1,001 characters; x takes at most 1,000"),
])
def test_each_problem_is_named_with_its_file_and_key(
        make_campaign: CampaignFactory, media: str, files: dict[str, bytes], expected: str) -> None:
    errors = _errors(make_campaign, media, files)
    assert any(expected in e for e in errors), errors
    assert all("campaign.toml" in e and "posts.poster.media" in e for e in errors)


def test_limits_follow_the_platforms_a_post_goes_to(make_campaign: CampaignFactory) -> None:
    # 1.2 MB is too big for Bluesky, fine on X (5 MB)
    big = {"big.png": PNG + bytes(1_200_000)}
    assert _errors(make_campaign, '[{ path = "big.png", alt = "a" }]', big, '["bird"]') == []
    assert _errors(make_campaign, '[{ path = "big.png", alt = "a" }]', big, '["sky"]') != []


def test_paths_stay_inside_the_campaign_folder(make_campaign: CampaignFactory,
                                               tmp_path: Path) -> None:
    (tmp_path / "outside.png").write_bytes(PNG)
    errors = _errors(make_campaign, '[{ path = "../outside.png", alt = "a" }]', {})
    assert errors and "posts.poster.media" in errors[0]


@pytest.mark.parametrize(("head", "mime"), [
    (b"\x89PNG\r\n\x1a\n\0\0\0\0", "image/png"), (b"\xff\xd8\xff\xe0\0\0\0\0\0\0\0\0", "image/jpeg"),
    (b"GIF89a\0\0\0\0\0\0", "image/gif"), (b"GIF87a\0\0\0\0\0\0", "image/gif"),
    (b"RIFF\0\0\0\0WEBPVP8 ", "image/webp"), (b"RIFF\0\0\0\0WAVEfmt ", None),
    (b"<svg xmlns=", None), (b"", None),
])
def test_sniff(head: bytes, mime: str | None) -> None:
    assert sniff(head) == mime
