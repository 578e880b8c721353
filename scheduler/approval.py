"""What an approval covers, and the check that what goes out is what was approved.

A post's *manifest* is everything that goes out with it: the text, every option that
is sent (language, visibility, content warning), the post it replies to, each image's
file name, the SHA-256 of its bytes and its alt text, and the account (name, platform,
credentials prefix, and the handle `accounts check` verified, where known). Approving a
post stores its manifest (`post.approved`) and the manifest's digest
(`post.approved_hash`).

Right before each request the daemon builds the manifest again from the `Outgoing` it
is about to hand the adapter — with the image bytes it read for the upload, hashed
once — and compares: any difference holds the post back to draft with the
differences as the reason (`dispatch.send`). A handle learned after the approval is no
difference (nothing was verified then); a handle that changed is.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from content.errors import TminusError
from scheduler.rows import AccountLike, AccountRow
from scheduler.tables import account, post

if TYPE_CHECKING:
    from scheduler.db import Bind

VERSION = 1
_OPTIONS = ("language", "visibility", "content_warning")


def file_sha(path: str) -> str | None:
    """The SHA-256 of a media file's bytes, or None if it cannot be read."""
    try:
        return sha(Path(path).read_bytes())
    except OSError:
        return None


def text_hash(text: str) -> str:
    """What `post.text_hash` holds, and approval records: the text's SHA-256."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def manifest(*, text: str, options: Mapping[str, Any], parent_id: int | None,
             account: AccountLike, media: Iterable[tuple[str, str, str | None]]) -> dict[str, Any]:
    """The manifest of a post; `media` is (path, alt text, SHA-256 of the bytes or None)
    for each image, in order."""
    return {
        "v": VERSION, "text": text,
        **{k: options.get(k) for k in _OPTIONS},
        "reply_to": parent_id,
        "media": [{"file": Path(path).name, "path": path, "sha256": digest, "alt": alt}
                  for path, alt, digest in media],
        "account": {"name": account.name, "platform": account.platform,
                    "credentials": account.credentials, "handle": account.handle},
    }


def manifest_of_row(text: str, options: Mapping[str, Any] | None, parent_id: int | None,
                    account: AccountLike, shas: dict[str, str | None] | None = None
                    ) -> dict[str, Any]:
    """The manifest of a post as stored, reading its media files (`shas` caches each
    file's hash across the posts of one call)."""
    cache = {} if shas is None else shas
    items = []
    for m in (options or {}).get("media") or []:
        path = str(m.get("path", ""))
        if path not in cache:
            cache[path] = file_sha(path)
        items.append((path, str(m.get("alt", "")), cache[path]))
    return manifest(text=text, options=options or {}, parent_id=parent_id, account=account,
                    media=items)


def digest(m: Mapping[str, Any]) -> str:
    return sha(json.dumps(m, sort_keys=True, ensure_ascii=False).encode())


def differences(approved: Mapping[str, Any] | None, approved_hash: str | None,
                now: Mapping[str, Any]) -> list[str]:
    """What differs between the approved manifest and the one about to go out; empty
    when they agree."""
    if approved is None or approved_hash is None or digest(approved) != approved_hash:
        return ["its approval record is missing or does not match its digest"]
    out = []
    if approved.get("text") != now.get("text"):
        # imported only for a changed text: the daemon's process goes without it
        import difflib
        lines = difflib.unified_diff(str(approved.get("text")).splitlines(),
                                     str(now.get("text")).splitlines(), "approved", "now",
                                     lineterm="", n=0)
        out.append("text changed:\n" + "\n".join(list(lines)[2:]))
    for key in (*_OPTIONS, "reply_to"):
        if approved.get(key) != now.get(key):
            out.append(f"{key.replace('_', ' ')}: {approved.get(key)!r} → {now.get(key)!r}")
    old_media, new_media = approved.get("media") or [], now.get("media") or []
    if len(old_media) != len(new_media):
        out.append(f"media: {len(old_media)} image(s) approved, {len(new_media)} now")
    for n, (a, b) in enumerate(zip(old_media, new_media, strict=False), 1):
        name = b.get("file")
        if a.get("path") != b.get("path"):
            out.append(f"image {n}: {a.get('file')!r} → {name!r}")
        elif b.get("sha256") is None:
            out.append(f"image {n} ({name}): the file is missing or cannot be read")
        elif a.get("sha256") != b.get("sha256"):
            out.append(f"image {n} ({name}): the file's bytes changed since approval")
        if a.get("alt") != b.get("alt"):
            out.append(f"image {n} ({name}) alt text: {a.get('alt')!r} → {b.get('alt')!r}")
    old_acc, new_acc = approved.get("account") or {}, now.get("account") or {}
    for key, label in (("name", "account"), ("platform", "platform"),
                       ("credentials", "credentials prefix")):
        if old_acc.get(key) != new_acc.get(key):
            out.append(f"{label}: {old_acc.get(key)!r} → {new_acc.get(key)!r}")
    if old_acc.get("handle") is not None and old_acc.get("handle") != new_acc.get("handle"):
        out.append(f"account handle: {old_acc.get('handle')!r} → {new_acc.get('handle')!r}")
    return out


# -- the digest of a set of posts: what a preview shows, what an approval takes ---------


_COLUMNS = (post.c.id, post.c.text, post.c.due_at, post.c.not_after, post.c.options,
            post.c.parent_id, post.c.account_id)


@dataclass(frozen=True)
class Digests:
    """The digest of a set of posts, and each post's manifest (what its approval covers)."""

    digest: str
    manifests: dict[int, dict[str, Any]]


def digests(s: Bind, post_ids: Sequence[int], *, lock: bool = False) -> Digests:
    """The posts as they are now, media files read; `lock` holds them (PostgreSQL) until
    the transaction ends, so what is approved is what was digested."""
    ids = list(post_ids)
    q = sa.select(*_COLUMNS).where(post.c.id.in_(ids))
    if lock:
        q = q.with_for_update(of=post)
    rows = sorted(s.execute(q).all(), key=lambda r: int(r.id))
    accounts = {a.id: AccountRow.of(a) for a in s.execute(sa.select(account).where(
        account.c.id.in_({r.account_id for r in rows})))}
    shas: dict[str, str | None] = {}   # one read of an image shared by many posts
    h = hashlib.sha256()
    manifests = {}
    for r in rows:
        m = manifest_of_row(r.text, r.options, r.parent_id, accounts[r.account_id], shas)
        manifests[int(r.id)] = m
        h.update(json.dumps([r.id, r.due_at.isoformat(), r.not_after.isoformat(),
                             digest(m)]).encode())
        h.update(b"\n")
    return Digests(h.hexdigest(), manifests)


def digest_of(s: Bind, post_ids: Sequence[int], *, lock: bool = False) -> str:
    """The digest of these posts as they are now: `tminus preview` prints it, the web's
    approval page carries it, `approve(expect=)` compares it."""
    return digests(s, post_ids, lock=lock).digest


class Changed(TminusError):
    """What would be approved is not what was shown."""


def check_digest(got: Digests, expect: str) -> None:
    if got.digest != expect.strip().lower():
        raise Changed("something changed since these posts were shown (a text, a time, an "
                      "option, an image, an account, or another person approved one); nothing "
                      "was approved — look at them again")
