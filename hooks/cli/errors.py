"""The one error type of the CLI: a one-line message and an exit code, never a traceback."""

from __future__ import annotations

#: Exit codes (docs/cli.md).
OK = 0
FAILURE = 1  # usage, input or API error
BLOCKED = 2  # something blocks a release
FAILED = 3  # the bake failed or the Rollout is stalled


class CliError(Exception):
    """Printed as `error: <message>` on stderr; the process exits with `code`."""

    def __init__(self, message: str, code: int = FAILURE) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
