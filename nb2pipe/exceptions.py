"""The errors nb2pipe reports to whoever called it, under one base that carries the exit code:
the command line prints them (`nb2pipe: error: MESSAGE`) and exits with it, in one place.

Not under this base: the runtime's StepError (the runtime is copied into every project and
imports nothing of nb2pipe), and exceptions that steer control rather than tell a person
something (a run interrupted with Ctrl-C, server work superseded or lost, a path the server
answers with an HTTP status).
"""

from __future__ import annotations

from typing import ClassVar


class Nb2pipeError(Exception):
    """nb2pipe cannot do what it was asked; the message says why and names the file.

    `exit_code` is the command's exit status: 2 for a usage error or an unreadable input, 1
    when the input was read but the work failed. The command line shows the message after
    `label`, on one line whatever characters a file name in it holds, unless `one_line` is
    False (a message holding another program's output, or diagnostics one per line)."""

    exit_code: ClassVar[int] = 2
    label: ClassVar[str] = "nb2pipe: error: "
    one_line: ClassVar[bool] = True


class PipelineFailed(Nb2pipeError):
    """The pipeline ran and failed; the message is the run's error as it reported it."""

    exit_code = 1
    label = "nb2pipe: "  # a step failed, not nb2pipe
    one_line = False  # it may end with the step's error as Python reported it
