"""verify's comparison, on fingerprints as the notebook's two runs and the pipeline's give
them: what it compares, what it leaves out and why."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from support import graph_of

from nb2pipe.execute.verify import Key, compare
from nb2pipe.runtime.fingerprint import fingerprint

NOTEBOOK = graph_of(
    ("import datetime as dt\nnow = dt.datetime.now()\nk = 2", "step:clock"),
    ("stamp = now.strftime('%H:%M')", "step:fmt"),
    ("label = stamp + '!'", "step:show"),
    ("n = k * 2", "step:double"),
)


def runs(values: dict[str, Any], pipeline: bool = False) -> dict[Key, Any]:
    """Fingerprints at every boundary and as the run ends, each name's value from `values`
    (the pipeline's left behind by the step that binds it, the notebook's by its run)."""
    found: dict[Key, Any] = {}
    for node in NOTEBOOK.steps:
        for name in node.reads:
            found[(node.name, "inputs", name)] = fingerprint(values[name])
        for name in node.returns:
            found[(node.name, "outputs", name)] = fingerprint(values[name])
        for name in sorted(set(node.defines) & set(values)):
            found[(node.name if pipeline else "", "final", name)] = fingerprint(values[name])
    return found


def test_a_value_made_from_one_no_two_runs_agree_on_is_left_out_not_a_divergence() -> None:
    # the two notebook runs side by side agree on the minute, the pipeline's, later, not
    first = runs({"now": 1.5, "k": 2, "stamp": "10:00", "label": "10:00!", "n": 4})
    second = runs({"now": 1.7, "k": 2, "stamp": "10:00", "label": "10:00!", "n": 4})
    pipeline = runs({"now": 9.1, "k": 2, "stamp": "10:01", "label": "10:01!", "n": 4},
                    pipeline=True)
    verdict = compare(NOTEBOOK, first, second, pipeline)
    assert verdict.divergence is None, verdict.divergence
    left_out = {(key[0], key[2]): source for key, source in verdict.unstable_inputs}
    assert left_out[("fmt", "stamp")] == "now"  # made from `now` in its own step
    assert left_out[("show", "stamp")] == "now"  # and the step after, reading it
    assert left_out[("show", "label")] == "now"
    assert verdict.total > 0 and verdict.ok


def test_a_difference_in_a_value_made_from_stable_ones_is_still_caught() -> None:
    first = runs({"now": 1.5, "k": 2, "stamp": "10:00", "label": "10:00!", "n": 4})
    second = runs({"now": 1.7, "k": 2, "stamp": "10:00", "label": "10:00!", "n": 4})
    pipeline = runs({"now": 9.1, "k": 2, "stamp": "10:00", "label": "10:00!", "n": 5},
                    pipeline=True)
    verdict = compare(NOTEBOOK, first, second, pipeline)
    assert verdict.divergence is not None
    assert (verdict.divergence.step, verdict.divergence.name) == ("double", "n")


REBOUND = graph_of(("number = len\nshout = 'hey'", "step:a"), ("x = number([1, 2])", "step:b"),
                   ("def number(v):\n    return 0\nclass shout:\n    pass", "step:c"),
                   ("y = number(1)", "step:d"))


def test_a_value_the_notebook_later_binds_to_a_definition_is_compared_where_it_is_a_value(
) -> None:
    """`number = len`, then `def number(...)`: as the run ends the notebook's `number` is the
    function, which no step leaves as a value (it is code, emitted where used); the value
    `number` was before is compared where the steps hand it over, not against the function."""
    def number(v: object) -> int:
        return 0

    class shout:
        pass

    notebook: dict[Key, Any] = {
        ("a", "outputs", "number"): fingerprint(len),
        ("b", "inputs", "number"): fingerprint(len),
        ("", "final", "number"): fingerprint(number),
        ("", "final", "shout"): fingerprint(shout),
        ("", "final", "x"): fingerprint(2), ("", "final", "y"): fingerprint(0)}
    pipeline: dict[Key, Any] = {
        ("a", "outputs", "number"): fingerprint(len), ("a", "final", "shout"): fingerprint("hey"),
        ("b", "inputs", "number"): fingerprint(len),
        ("b", "final", "number"): fingerprint(len), ("b", "final", "x"): fingerprint(2),
        ("d", "final", "y"): fingerprint(0)}
    verdict = compare(REBOUND, notebook, dict(notebook), pipeline)
    assert verdict.divergence is None, verdict.divergence
    assert verdict.compared == 2 and verdict.compared_final == 2 and not verdict.missing
    pipeline[("b", "final", "x")] = fingerprint(3)  # a value is still compared as it ends
    assert compare(REBOUND, notebook, dict(notebook), pipeline).divergence is not None


def test_memory_numpy_leaves_uninitialised_holds_the_runs_mark(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """verify's notebook runs each mark what `np.empty` and `np.empty_like` allocate with a
    byte of their own: a value read from memory no cell wrote differs between the two runs
    (left out, as unseeded randomness is), one its cells fill does not."""
    from nb2pipe.runtime.fingerprint import uninitialised_memory

    for name in ("empty", "empty_like"):
        monkeypatch.setattr(np, name, getattr(np, name))  # restored after the test
    uninitialised_memory(0x5A)
    uninitialised_memory(0x5A)  # once is enough: marked functions are not wrapped again
    assert np.empty(3, dtype=np.uint8).tolist() == [0x5A] * 3
    assert np.empty_like(np.zeros((2, 3), order="F"), dtype=np.uint16).ravel().tolist() == [
        0x5A5A] * 6
    partial = np.empty(4)
    partial[:2] = 1.0
    filled = np.empty(4)
    filled[:] = 1.0
    uninitialised_memory(0xA5)
    again = np.empty(4)
    again[:2] = 1.0
    assert fingerprint(partial) != fingerprint(again)  # the unwritten half differs
    assert np.empty(2, dtype=object).tolist() == [None, None]
    assert fingerprint(filled) == fingerprint(np.full(4, 1.0))
