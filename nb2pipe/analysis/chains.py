"""Names of attribute and subscript chains: `np.random.rand`, `df.loc[m, "a"]`.

A leaf of the analysis: the visitor, the version tests and the rules all name what a chain
starts at or spells out, the same way."""

from __future__ import annotations

import ast


def dotted(node: ast.expr) -> str | None:
    """`np.random.rand` -> "np.random.rand"; None for anything but names and attributes."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(node.id)
    return ".".join(reversed(parts))


def root_name(node: ast.expr) -> str | None:
    """`df.loc[m, "a"]` -> "df"; None when the chain does not start at a name."""
    while isinstance(node, ast.Attribute | ast.Subscript | ast.Starred):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None
