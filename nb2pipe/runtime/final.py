"""What a step's cells leave behind: the step function's local variables as it returns.

`nb2pipe verify` compares them with what the notebook holds when its own run ends, so a value
that no later step reads (computed in the last step, say) is compared too. The function runs
under a profile hook on its own thread, which sees its frame as it returns.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from types import FrameType
from typing import Any, TypeVar

T = TypeVar("T")


def call_keeping_locals(function: Callable[..., T], arguments: dict[str, Any]
                        ) -> tuple[T, dict[str, Any]]:
    """`function(**arguments)`, and its local variables as it returned (or raised)."""
    code = getattr(function, "__code__", None)
    kept: dict[str, Any] = {}
    previous = sys.getprofile()

    def watch(frame: FrameType, event: str, arg: Any) -> None:
        if event == "return" and frame.f_code is code:
            kept.clear()
            kept.update(frame.f_locals)

    sys.setprofile(watch)
    try:
        result = function(**arguments)
    finally:
        sys.setprofile(previous)
    return result, kept
