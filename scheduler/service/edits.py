"""A person fixes one post: `tminus edit` and the web's edit page.

An edit is checked as a campaign post is (its platform's length, counted as the
platform counts, against its instance's limit; the character rules; the duplicate
rule; the campaign's hashtag warning and the glued-link warning), puts the post back
to draft with the difference in its event, and needs approval again. For a planned
post the campaign file's own text is kept beside the edit (`planned_text`): a later
`tminus plan` keeps the edit, and if the file changed that post meanwhile it reports
the conflict and flags the post for a person, who keeps the edit or takes the file's
text.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.engine import Engine
from sqlmodel import Session

from content.chars import forbidden_character
from content.entities import glued_links
from content.errors import FieldError, NotFound, TminusError
from content.expand import NO_HASHTAG, hashtag_warnings
from content.rules import check_length
from scheduler.db import session
from scheduler.models import Account, Campaign, Post, PostState, text_hash
from scheduler.planner import _diff as diff  # the one diff of texts, as `plan` prints it
from scheduler.service.people import actor
from scheduler.service.posts import _no_duplicate
from scheduler.transitions import record_note, transition

S = PostState
EDITABLE = (S.DRAFT, S.QUEUED)
MAX_TEXT = 10_000       # far over every platform's limit: a bound, not a rule
GLUED = "the link "     # how `glued_links` begins each warning


@dataclass(frozen=True)
class Edited:
    post_id: int
    was: PostState
    state: PostState
    diff: str               # unified lines: "@@" hunks, "-" what was, "+" what is now
    length: int
    limit: int
    unit: str
    warnings: tuple[str, ...] = ()    # what `validate` would warn about in the new text
    campaign: str = ""                # its slug, for the command that approves it again
    changed: tuple[str, ...] = ("text",)   # what changed (a re-import: "image", "expiry", ...)


@dataclass(frozen=True)
class EditSheet:
    """What the edit page shows: the post's text, how it counts, and — after a re-plan
    changed the campaign file under an edit — the file's own text."""

    post_id: int
    campaign: str
    account: str
    platform: str
    state: PostState
    text: str
    length: int
    limit: int
    unit: str
    editable: bool
    edited_by: str | None
    planned_text: str | None    # the campaign file's text while an edit stands
    conflict: bool


def edit_sheet(engine: Engine, post_id: int) -> EditSheet:
    with session(engine) as s:
        p, acc, camp = _load(s, post_id)
        fit = check_length(acc.platform, p.text, limit=acc.max_characters,
                           spoiler_text=(p.options or {}).get("content_warning") or "")
        return EditSheet(post_id, camp.slug, acc.name, acc.platform, p.state, p.text,
                         fit.length, fit.limit, fit.unit, p.state in EDITABLE, p.edited_by,
                         p.planned_text, p.plan_conflict)


def edit_post(engine: Engine, post_id: int, text: str, *, by: str, now: datetime) -> Edited:
    """Change the text of a draft or queued post; it is a draft again, to approve."""
    with session(engine) as s:
        return edit_in(s, post_id, text, by=by, now=now)


def edit_in(s: Session, post_id: int, text: str, *, by: str, now: datetime,
            why: str | None = None) -> Edited:
    """`edit_post` in the caller's transaction: a CSV re-import edits the posts of its
    changed rows all together, or none. `why` begins the event's reason."""
    by = actor(by)
    new = _clean(text)
    p, acc, camp = _load(s, post_id)
    _check_editable(p)
    if new == p.text:
        raise FieldError("text", "is the post's text as it is; change something, or leave it")
    return _apply(s, p, acc, camp, new, by, now, why or f"edited by {by}")


def settle_conflict(engine: Engine, post_id: int, *, keep: bool, by: str, now: datetime
                    ) -> Edited:
    """After the campaign file changed a post a person had edited: keep the edit (the
    conflict is settled), or take the file's text (the edit is dropped)."""
    by = actor(by)
    with session(engine) as s:
        p, acc, camp = _load(s, post_id)
        _check_editable(p)
        if p.planned_text is None:
            raise TminusError(f"post {post_id} has no edit standing against its campaign file")
        if keep:
            if not p.plan_conflict:
                raise TminusError(f"post {post_id}'s edit is not in conflict with its campaign file")
            p.plan_conflict = False
            s.add(p)
            record_note(s, [post_id], p.state, f"{by} kept the edit over the campaign file's "
                        "change", now, by)
            fit = check_length(acc.platform, p.text, limit=acc.max_characters)
            return Edited(post_id, p.state, p.state, "", fit.length, fit.limit, fit.unit,
                          campaign=camp.slug)
        return _apply(s, p, acc, camp, p.planned_text, by, now,
                      f"{by} took the campaign file's text")


# -- helpers ---------------------------------------------------------------------------------


def _load(s: Session, post_id: int) -> tuple[Post, Account, Campaign]:
    # locked (PostgreSQL): a daemon's claim or a person's approve waits for this edit
    p = s.get(Post, post_id, with_for_update=True)
    if p is None:
        raise NotFound(f"no post {post_id}", "see `tminus list`")
    acc, camp = s.get(Account, p.account_id), s.get(Campaign, p.campaign_id)
    assert acc is not None and camp is not None
    return p, acc, camp


def _check_editable(p: Post) -> None:
    if p.state not in EDITABLE:
        raise TminusError(f"post {p.id} is {p.state}; only a draft or queued post can be edited")


def _clean(text: str) -> str:
    # a browser's textarea sends CRLF; a post's lines are LF, as the campaign files give them
    new = text.replace("\r\n", "\n").replace("\r", "\n").strip()
    if not new:
        raise FieldError("text", "is empty; write the post, or cancel it instead")
    if len(new) > MAX_TEXT:
        raise FieldError("text", f"is {len(new)} characters; no platform takes that many")
    problem = forbidden_character(new)   # the campaign files' character rules (content/chars.py)
    if problem:
        raise FieldError("text", problem)
    return new


def _apply(s: Session, p: Post, acc: Account, camp: Campaign, new: str, by: str,
           now: datetime, why: str) -> Edited:
    cw = (p.options or {}).get("content_warning") or ""
    fit = check_length(acc.platform, new, limit=acc.max_characters, spoiler_text=cw)
    if not fit.ok:
        raise FieldError("text", f"is {fit.length} {fit.unit}, over {acc.platform}'s limit of "
                         f"{fit.limit} for {acc.name}; shorten it")
    assert p.id is not None
    _no_duplicate(s, acc, new, excluding=p.id)
    change = diff(p.text, new)
    was = p.state
    if p.origin == "plan" and p.planned_text is None:
        p.planned_text = p.text          # the file's text, kept beside the edit
    if new == p.planned_text:
        p.planned_text = None            # back to the file's own text: no edit stands
    p.text, p.text_hash, p.approved_hash = new, text_hash(new), None
    p.length, p.length_limit = fit.length, fit.limit
    # the old text's own warnings go with it; one about its time (DST) stays
    said = hashtag_warnings(new, camp.hashtags) + glued_links(new, camp.hashtags)
    p.warnings = [w for w in p.warnings if w != NO_HASHTAG and not w.startswith(GLUED)] + said
    p.edited_by, p.edited_at, p.plan_conflict, p.updated_at = by, now, False, now
    s.add(p)
    reason = f"{why}; approve it again\n{change}"
    if was == S.QUEUED:
        transition(s, p, S.DRAFT, reason, now, by)
    else:
        s.flush()
        record_note(s, [p.id], was, reason, now, by)
    return Edited(p.id, was, S.DRAFT, change, fit.length, fit.limit, fit.unit, tuple(said),
                  camp.slug)
