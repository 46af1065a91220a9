"""Text from outside the code, written into Markdown or HTML: one escaping function per place.

A notebook's file name, its parameter values, metric names and values, error messages, what a
step's record in a shared result storage says: any of it may hold what starts a link, an
image, an HTML tag or a table border. Generated READMEs, the run's report and the Prefect
artifacts of a run receive such text only through these functions (nb2pipe's generator
imports them from here, a generated project's runtime has them as its own).
"""

from __future__ import annotations

import html
import re
import unicodedata
from urllib.parse import quote, urlsplit

_BIDI = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_BREAKS = frozenset("\x85\u2028\u2029")
_MARKDOWN_SPECIAL = frozenset("\\`*_[]()<>{}|&~!#$")
_AUTOLINK = re.compile(r":(?=/)|@|(?<=www)\.", re.IGNORECASE)  # what starts an autolink
LINK_SCHEMES = ("http", "https", "file")  # what a report link may be; anything else is text
# Kept as written in an address; anything else (spaces, <>, brackets, parentheses, quotes,
# backslashes) is percent-encoded, so the address cannot end the link or start another.
_URL_SAFE = ":/?#@!$&*+,;=%~"


def unsafe_char(char: str) -> bool:
    """Control characters, line and paragraph separators, bidirectional overrides."""
    return (unicodedata.category(char) in ("Cc", "Zl", "Zp") or char in _BIDI
            or char in _BREAKS)


def one_line(text: str) -> str:
    """`text` as one line of visible characters: every run of control, line-breaking or
    bidirectional characters becomes one space; an unpaired surrogate (a file name that is not
    UTF-8) becomes U+FFFD."""
    out: list[str] = []
    for char in text:
        if 0xD800 <= ord(char) <= 0xDFFF:
            out.append("\ufffd")
        elif unsafe_char(char):
            if out and out[-1] != " ":
                out.append(" ")
        else:
            out.append(char)
    return "".join(out).strip()


def md_text(text: str) -> str:
    """Text for a Markdown paragraph, heading, link text or table cell: one line, with every
    character that could start emphasis, a link, an image, HTML, math or a cell border
    escaped, and the addresses that renderers turn into links by themselves (`http://x`,
    `www.x`, `a@b`) broken up by escapes that do not show."""
    escaped = "".join("\\" + c if c in _MARKDOWN_SPECIAL else c for c in one_line(text))
    return _AUTOLINK.sub(lambda m: "\\" + m.group(), escaped)


def md_code(text: str, *, in_table: bool = False) -> str:
    """A Markdown inline code span showing `text` (one line) as written."""
    text = one_line(text)
    runs = [len(r) for r in re.findall(r"`+", text)]
    fence = "`" * (max(runs, default=0) + 1)
    padded = f" {text} " if text.startswith(("`", " ")) or text.endswith(("`", " ")) else text
    if in_table:  # GitHub splits a table cell at any unescaped |, even inside code
        padded = padded.replace("|", "\\|")
    return f"{fence}{padded or ' '}{fence}"


def md_link(text: str, url: str) -> str:
    """A Markdown link to `url` when it is a web or file address (`javascript:` and the like
    are shown as text, never linked), its text escaped and its address percent-encoded."""
    if urlsplit(url).scheme.lower() not in LINK_SCHEMES or url != one_line(url):
        return md_text(text if text == url else f"{text} ({url})")
    return f"[{md_text(text)}]({quote(url, safe=_URL_SAFE)})"


def md_anchor(text: str) -> str:
    """A link to the heading whose id is `text` (the same page): `#` and the id encoded."""
    return "#" + quote(one_line(text), safe="")


def html_text(text: str) -> str:
    """Text for HTML element content or a quoted attribute value."""
    return html.escape(text, quote=True)


def artifact_key(text: str) -> str:
    """A Prefect artifact's key made of any text: lowercase letters, digits and dashes."""
    return "".join(c if c.isalnum() else "-" for c in text.lower()).strip("-")
