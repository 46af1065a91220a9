"""Where two fingerprints of one object differ, attribute by attribute, and whether the
difference is only memos a method derived from the rest of the object.

A fingerprint keeps the hash of each attribute of an object, down a few objects deep
(runtime/fingerprint.py: `fields`). Two values that differ are walked down from the top: an
object hashed attribute by attribute, of the same type in both, differs exactly where its
attributes differ, so the walk ends at the attributes that make the difference (an attribute
one has and the other not, or whose values differ where they are not split further).

Such a difference is a memo, and the values the same, only when every attribute in it:
- is one its class derives from the rest of the object (runtime/derived.py: stored only by
  methods callable with the instance alone, from the instance alone, not from its own earlier
  value), and
- is missing, or None (the "not computed yet" a constructor writes), in one of the two: the
  other then holds what the method computed from the same rest of the object, which every
  other attribute being equal makes the same. An attribute that holds two different values
  is a change, whoever stored it.

So a lost change is never a memo: a fit stores what it is given (`fit(X, y)`); an appended
list, a counter and an attribute assigned another value differ in a value both hold; an
attribute a cell assigns is stored by no method of the class.

What is left of the class has no safe rule: attributes that methods of the object's class
store, but from a call's arguments, a data global or their own earlier value (`predict(200,
211)` keeping the index it predicted over; a lost `fit(X, y)` too). Whether a later call
reads them cannot be told from the code, so such a difference is its own outcome, "method
state" (`only_method_state`): not a pass and not a divergence, and verify names each
attribute. A difference in an attribute no method stores (a cell assigned it), two values
of a memo (made from the same rest of the object, it has one), a container's items or a
frame's values is a divergence.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class AttributeDifference:
    path: str  # ".results.diagn", from the variable
    how: str  # "only in the notebook" | "only in the pipeline" | "other values"
    derived: bool  # a memo: derived by its class, and missing or None on one side
    stored: bool = False  # stored by a method of its class after construction

    def describe(self, name: str) -> str:
        return f"{name}{self.path} ({self.how})"


def attribute_differences(notebook: dict[str, Any],
                          pipeline: dict[str, Any]) -> list[AttributeDifference] | None:
    """The attributes two differing fingerprints differ in, or None when their difference is
    not only in attributes (another type, a container's items, a frame's values)."""
    mine, theirs = pipeline.get("fields"), notebook.get("fields")
    if not isinstance(mine, dict) or not isinstance(theirs, dict):
        return None
    children: dict[str, list[str]] = {}
    for path in sorted(set(mine) | set(theirs)):
        if path:
            children.setdefault(path.rpartition(".")[0], []).append(path)
    found: list[AttributeDifference] = []

    def walk(path: str) -> bool:
        """Whether the difference at the split object `path` is explained by its attributes."""
        for child in children.get(path, []):
            a, b = theirs.get(child), mine.get(child)
            if a is not None and b is not None and a[0] == b[0]:
                continue
            if a is not None and b is not None and _split(a, b):
                if not walk(child):
                    return False
                continue
            if a is None or b is None:
                held: list[str] = a if a is not None else b or []
                how = "only in the notebook" if b is None else "only in the pipeline"
                derived, stored = "d" in held[1], "s" in held[1]
            else:
                how = "other values"
                derived = "d" in a[1] and "d" in b[1] and ("n" in a[1]) != ("n" in b[1])
                # a memo made from two equal rests of an object is one value: two are a change
                stored = "s" in a[1] and "s" in b[1] and not ("d" in a[1] and "d" in b[1])
                if derived:
                    how = "None in the pipeline" if "n" in b[1] else "None in the notebook"
            found.append(AttributeDifference(child, how, derived, stored))
        return True

    top_mine, top_theirs = mine.get(""), theirs.get("")
    if top_mine is None or top_theirs is None or not _split(top_theirs, top_mine) or not walk(""):
        return None
    return found or None


def _split(a: list[str], b: list[str]) -> bool:
    """Both hashed attribute by attribute, and of one type: they differ where those do."""
    return "o" in a[1] and "o" in b[1] and a[2:] == b[2:]


def only_memos(differences: list[AttributeDifference] | None) -> bool:
    return bool(differences) and all(d.derived for d in differences or [])


def only_method_state(differences: list[AttributeDifference] | None) -> bool:
    """Whether every attribute in the difference is one methods of its class store."""
    return bool(differences) and all(d.derived or d.stored for d in differences or [])
