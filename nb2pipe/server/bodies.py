"""Request bodies -> JSON values, within bounds; anything else is a 400 with one line.

JSON nested thousands of levels deep makes Python's parser, pickle (to a worker process) and
json.dumps all raise RecursionError, each at a different depth: a body is refused here, before
any of them sees it, when it is nested deeper than a notebook ever is.
"""

from __future__ import annotations

import json
from typing import Any

MAX_DEPTH = 200  # a notebook is a few levels deep; widget state and JSON outputs a few dozen


class BadRequest(ValueError):
    """The body is not JSON the endpoint can take (a 400); the message is one line."""


def parse(raw: bytes, what: str = "the request body") -> Any:
    """The JSON value of `raw`. Raises BadRequest when it is not JSON, or too deep."""
    try:
        value = json.loads(raw)
    except RecursionError:
        raise BadRequest(f"{what} is JSON nested too deeply (more than {MAX_DEPTH} "
                         "levels)") from None
    except ValueError:
        raise BadRequest(f"{what} is not JSON") from None
    if _deeper_than(value, MAX_DEPTH):
        raise BadRequest(f"{what} is JSON nested too deeply (more than {MAX_DEPTH} levels)")
    return value


def _deeper_than(value: Any, limit: int) -> bool:
    """Whether lists and objects nest more than `limit` levels in `value` (without recursion)."""
    stack = [(value, 1)] if isinstance(value, dict | list) else []
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        children = item.values() if isinstance(item, dict) else item
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False
