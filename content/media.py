"""Images a post attaches: what type the bytes are, and whether every platform the post
goes to takes them.

The type is read from the file's first bytes, not its name: a `poster.png` that is
really a JPEG is uploaded as a JPEG, and a text file named `.png` is refused at
validation instead of at the platform, minutes before the deadline. The four types are
those every platform in the registry takes (PNG, JPEG, GIF, WebP); their signatures
are the formats' own (PNG spec 5.2, JFIF/Exif SOI marker, GIF87a/GIF89a, RIFF....WEBP).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)
SNIFF_BYTES = 12


def sniff(head: bytes) -> str | None:
    """The MIME type of an image from its first bytes (at least `SNIFF_BYTES`), or None
    if it is none of the four."""
    for signature, mime in _SIGNATURES:
        if head.startswith(signature):
            return mime
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    return None


def sniff_file(path: str | Path) -> str | None:
    """The MIME type of an image file (None: not one of the four, or unreadable)."""
    try:
        with open(path, "rb") as fh:
            return sniff(fh.read(SNIFF_BYTES))
    except OSError:
        return None


@dataclass(frozen=True)
class Image:
    path: str
    alt: str


def problems(images: Sequence[Image], platform_name: str) -> list[str]:
    """What is wrong with attaching `images` to one post on `platform_name`, by the
    platform registry's media limits: count, type, size, alt text length."""
    from content.platforms import platform
    from content.rules.graphemes import grapheme_count
    limits = platform(platform_name).media
    out = []
    if len(images) > limits.max_count:
        out.append(f"{len(images)} images, but {platform_name} takes at most {limits.max_count} "
                   "per post")
    for image in images:
        name = Path(image.path).name
        try:
            size = Path(image.path).stat().st_size
        except OSError:
            out.append(f"image {name!r} is not in the campaign folder")
            continue
        mime = sniff_file(image.path)
        if mime is None:
            out.append(f"image {name!r} is not a PNG, JPEG, GIF or WebP image (by its bytes)")
        elif mime not in limits.types:
            out.append(f"image {name!r} is {mime}, which {platform_name} does not take")
        if size > limits.max_bytes:
            out.append(f"image {name!r} has {size:,} bytes; {platform_name} takes at most "
                       f"{limits.max_bytes:,}")
        alt_length = grapheme_count(image.alt)
        if alt_length > limits.max_alt:
            out.append(f"the alt text of {name!r} is {alt_length:,} characters; "
                       f"{platform_name} takes at most {limits.max_alt:,}")
    return out
