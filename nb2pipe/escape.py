"""Text from outside the cells, made safe for each language nb2pipe writes or prints: one
function per target (Python, YAML, Markdown, shell, requirements.txt, Dockerfile, a terminal
line). At the bottom of the import order: the generator, the writer, the reports and the
command line all use it."""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable

from nb2pipe.exceptions import Nb2pipeError
from nb2pipe.runtime.text import (
    html_text,
    md_anchor,
    md_code,
    md_link,
    md_text,
    one_line,
    unsafe_char,
)

__all__ = ["UnsafeText", "comment", "docstring_text", "dockerfile_path", "html_text",
           "md_anchor", "md_code", "md_comment", "md_fence", "md_link", "md_text", "one_line",
           "py_string", "requirement_line", "shell_word", "unsafe_char", "yaml_string"]

# File names, folder names, parameter defaults and help text come from the notebook or the disk
# and may hold anything: line breaks of every kind, quotes, comment closers, template and shell
# syntax. Each generated file gets such text only through the function for its language below.
# `one_line` and the Markdown and HTML forms are the runtime's (nb2pipe/runtime/text.py): a
# generated project's run report escapes with them too, without nb2pipe installed.

def comment(text: str) -> str:
    """Text for a `#` comment (Python, YAML, TOML, requirements.txt, Dockerfile): one line, and
    no trailing backslash that a line-joining reader could take for a continuation."""
    return one_line(text).rstrip("\\").rstrip()


def py_string(text: str) -> str:
    """A Python string literal with exactly the value `text`, on one line (repr escapes every
    character that is not printable, so line breaks of any kind and unpaired surrogates are
    written as escapes); double-quoted when it can be."""
    written = repr(text)
    if written.startswith("'") and '"' not in text:
        written = '"' + written[1:-1] + '"'  # no quote inside: nothing was escaped for "'"
    return written


def docstring_text(text: str) -> str:
    """Text for inside a triple-quoted docstring: one line, backslashes and quotes escaped."""
    return one_line(text).replace("\\", "\\\\").replace('"', '\\"')


def yaml_string(text: str) -> str:
    """A double-quoted YAML scalar with the value `text`; Prefect's `{{ ... }}` placeholders are
    broken apart (`{ {`), since `prefect deploy` would replace them with variables or secrets."""
    while "{{" in text or "}}" in text:
        text = text.replace("{{", "{ {").replace("}}", "} }")
    out = ['"']
    for char in text:
        code = ord(char)
        if char in '"\\':
            out.append("\\" + char)
        elif 0xD800 <= code <= 0xDFFF:
            out.append("\ufffd")
        elif 0x20 <= code <= 0x7E or (code >= 0xA0 and not unsafe_char(char) and code != 0xFEFF):
            out.append(char)
        elif code <= 0xFF:
            out.append(f"\\x{code:02x}")
        elif code <= 0xFFFF:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    return "".join(out) + '"'


def md_comment(text: str) -> str:
    """Text for inside an HTML comment `<!-- ... -->` in Markdown: one line, no `--`."""
    text = one_line(text)
    while "--" in text:
        text = text.replace("--", "- -")
    return text.lstrip(">").rstrip("-")


def md_fence(info: str, lines: Iterable[str]) -> list[str]:
    """A fenced code block around `lines`, its fence longer than any backtick run inside."""
    body = list(lines)
    longest = max((len(r) for line in body for r in re.findall(r"`+", line)), default=0)
    fence = "`" * max(3, longest + 1)
    return [fence + info, *body, fence]


def shell_word(text: str) -> str:
    """One shell word with the value `text` (POSIX quoting); paste-safe in bash."""
    return shlex.quote(text)


def requirement_line(spec: str) -> str | None:
    """`spec` as a requirements.txt line if it is one PEP 508 requirement (`pandas>=2`,
    `pkg @ https://...`); None for pip options (`-e`, `--index-url`), files and anything else."""
    from packaging.requirements import InvalidRequirement, Requirement

    if spec != one_line(spec) or spec.lstrip().startswith("-"):
        return None
    try:
        requirement = Requirement(spec)
    except InvalidRequirement:
        return None
    line = str(requirement)
    return line if " #" not in line and not line.endswith("\\") else None


class UnsafeText(Nb2pipeError, ValueError):
    """Text that a target language cannot hold safely; the message names the text and why."""


_DOCKER_PATH = re.compile(r"^[\w .+@,=:/~-]*$")


def dockerfile_path(text: str) -> str:
    """A path for a Dockerfile instruction (WORKDIR, or inside COPY's JSON form).

    Docker expands `$VAR`, quotes and backslashes in paths, even in the JSON form, and builders
    differ in the escapes they honour, so a path holding any of those is refused (UnsafeText)
    rather than written in a way one builder could read differently."""
    if not _DOCKER_PATH.match(text) or text != one_line(text):
        raise UnsafeText(f"the path {text!r} has characters a Dockerfile cannot hold safely "
                         "(only letters, digits, spaces and ._+@,=:/~- are)")
    return text
