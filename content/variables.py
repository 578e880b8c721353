"""The variables a post's template sees: the same for every post of one (post, account),
what depends on the post's own time, and the two joined.

Apart from `content.render` because building them needs no Jinja2: expanding a
campaign whose texts are rendered elsewhere (a rehearsal's folder is rendered in a
child process) imports only this.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from content.countdown import countdown_context, time_left


def base_context(*, campaign: Any, account: str, platform: str,
                 extra_vars: dict[str, Any], language: str | None) -> dict[str, Any]:
    """The variables that are the same for every post of one (post, account): built
    once, then copied per scheduled time by `post_context`."""
    variables = {**campaign.vars, **extra_vars}
    context: dict[str, Any] = {
        "campaign": {"slug": campaign.slug, "title": campaign.title},
        "vars": variables,
        "hashtags": " ".join(campaign.hashtags),
        "hashtag_list": list(campaign.hashtags),
        "account": account,
        "platform": platform,
        "language": language or "en",
        "deadline": campaign.deadline.astimezone(campaign.timezone),
    }
    # [vars] are also reachable by bare name ({{ call_line }}), unless they would hide
    # a built-in variable.
    for k, v in variables.items():
        context.setdefault(k, v)
    return context


def time_context(campaign: Any, due: datetime) -> dict[str, Any]:
    """What depends on the post's own time: `due` and the countdown (the same for
    every account posting at that time, so computed once per time)."""
    deadline = campaign.deadline
    context: dict[str, Any] = {"due": due.astimezone(campaign.timezone)}
    context.update(countdown_context(due, deadline))
    context["time_left_in"] = lambda lang: time_left(due, deadline, lang)
    return context


def post_context(base: dict[str, Any], *, campaign: Any, due: datetime,
                 timed: dict[str, Any] | None = None) -> dict[str, Any]:
    """`base` plus the time-dependent variables (`timed`, or computed for `due`)."""
    context = dict(base)
    context.update(timed if timed is not None else time_context(campaign, due))
    return context
