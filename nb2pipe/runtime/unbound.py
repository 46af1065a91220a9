"""A name a step's cells left unbound.

`if r > 3: m = r` binds `m` only when the condition holds; with no earlier value the name is
then unbound, as it is in the notebook. The step returns UNBOUND for it (steps.py:
`locals().get("m", UNBOUND)`) so that its values can be handed on whichever way the condition
went. A step given UNBOUND for a name unbinds it first (steps.py), so reading it fails as in the
notebook; verify leaves the name out (`bound`), and a metric left unbound is not published.
"""

from __future__ import annotations

from typing import Any


class Unbound:
    """The one marker; pickled by reference, so it stays the marker in every process."""

    _made: Unbound | None = None

    def __new__(cls) -> Unbound:
        if cls._made is None:
            cls._made = super().__new__(cls)
        return cls._made

    def __repr__(self) -> str:
        return "UNBOUND"

    def __reduce__(self) -> str:  # pickle and copy both take the module's UNBOUND
        return "UNBOUND"


UNBOUND = Unbound()


def bound(values: dict[str, Any]) -> dict[str, Any]:
    """`values` without the names left unbound."""
    return {name: value for name, value in values.items() if value is not UNBOUND}
