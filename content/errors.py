"""The errors a user can cause, and the one shape they are reported in.

Every user mistake (a bad campaign file, an unknown post, a wrong option value) is a
`TminusError`. The CLI prints `str(error)` on one red line and exits 2; nothing else
is shown, so the message must name the file, the key and what would be right.

They live here, in the bottom layer, because `content` raises them too (a campaign
file's errors) and imports go `scheduler → jobs → content`: every layer can raise one.
"""

from __future__ import annotations


class TminusError(Exception):
    """A mistake in the user's input or request: shown on one line, exit code 2."""


class NotFound(TminusError):
    """Something asked for by its name or number that is not there (a post id, a
    campaign's slug): the dashboard answers 404 with `what`, the terminal prints `what`
    and the `hint` for where to look (a command a page has no use for)."""

    def __init__(self, what: str, hint: str = "") -> None:
        self.what = what
        super().__init__(f"{what}; {hint}" if hint else what)


class FieldError(TminusError):
    """A wrong value for one named input: a command-line option (`--at`), or the field
    of the same name in a web form. `str()` reads as the command line writes it."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = message
        super().__init__(f"--{field.replace('_', '-')} {message}")


class CampaignError(TminusError):
    """A campaign folder is wrong. Carries where (file, key, line) and what is right."""

    def __init__(self, message: str, *, file: str | None = None, key: str | None = None,
                 line: int | None = None) -> None:
        self.message = message
        self.file = file
        self.key = key
        self.line = line
        super().__init__(self.render())

    def render(self) -> str:
        where = self.file or ""
        if self.line is not None:
            where = f"{where}:{self.line}" if where else f"line {self.line}"
        if self.key:
            where = f"{where} [{self.key}]" if where else f"[{self.key}]"
        return f"{where}: {self.message}" if where else self.message


class CampaignErrors(TminusError):
    """Several campaign problems found at once (validate prints them all)."""

    def __init__(self, errors: list[CampaignError]) -> None:
        self.errors = errors
        first = str(errors[0]) if errors else "campaign is invalid"
        more = f" (and {len(errors) - 1} more problem(s); run `tminus validate`)" if len(errors) > 1 else ""
        super().__init__(first + more)


class Unconfirmed(TminusError):
    """A request that would undo people's work — cancel approved posts, or a whole
    campaign — and needs a yes first. `str()` says what and how to confirm (`--yes`)
    where nobody can be asked; `question` asks it where someone can."""

    def __init__(self, message: str, question: str) -> None:
        self.question = question
        super().__init__(message)
