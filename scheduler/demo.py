"""`tminus demo`: a countdown campaign one minute long, planned, approved and sent by
the real daemon through the dry-run adapter, so a newcomer sees posts go out."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

DEMO_TOML = """\
# Written by `tminus demo`: a real campaign file, with a deadline {seconds} seconds
# after it was written. Edit it and run `tminus validate {folder}` to experiment.
[campaign]
slug = "demo"
title = "tminus demo: one minute to the deadline"
deadline = {deadline}
timezone = "UTC"
hashtags = ["#tminusDemo"]

[vars]
call_line = "202-555-0100"

[accounts.demo_org]
platform = "dryrun"

[accounts.demo_partner]
platform = "dryrun"

[[posts]]
key = "countdown"
text = "{{{{ time_left }}}} to the deadline. Call {{{{ call_line }}}} today. {{{{ hashtags }}}}"
accounts = ["demo_org"]
schedule = {{ at = [{countdown}] }}
expires = "20s"

[[posts]]
key = "amplify"
template = "amplify.txt.j2"
accounts = ["demo_partner"]
schedule = {{ at = [{amplify}] }}
expires = "20s"
"""

AMPLIFY = """\
We stand with {{ campaign.title.split(":")[0] }}: only {{ seconds_left }} seconds left.
{{ hashtags }}
"""


def write_demo_campaign(folder: Path, now: datetime, seconds: int = 60) -> datetime:
    """Write the demo campaign into `folder`; returns its deadline."""
    deadline = (now + timedelta(seconds=seconds)).replace(microsecond=0)
    marks = list(range(seconds - 10, 0, -10))   # T-50s, T-40s, ... T-10s
    countdown = ", ".join(f'"T-{s}s"' for s in marks)
    amplify = ", ".join(f'"T-{s - 5}s"' for s in marks if s - 5 > 0)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "campaign.toml").write_text(DEMO_TOML.format(
        seconds=seconds, folder=folder, deadline=deadline.isoformat(),
        countdown=countdown, amplify=amplify), encoding="utf-8")
    (folder / "amplify.txt.j2").write_text(AMPLIFY, encoding="utf-8")
    return deadline
