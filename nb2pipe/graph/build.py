"""Stage 4b, graph: Split + Analysis -> StepGraph (steps, per-variable edges, an order).

Edges come from the resolved inputs of every step (resolve.py) and from `after:` tags; graphlib
orders the steps and finds cycles; independent steps stay unconnected, so they run in parallel.
"""

from __future__ import annotations

import graphlib
from collections.abc import Iterable
from dataclasses import replace

from nb2pipe.analysis import Analysis
from nb2pipe.diagnostics import diagnostic, sort_diagnostics
from nb2pipe.graph.resolve import Resolver, StepState
from nb2pipe.model import (
    Diagnostic,
    Edge,
    Notebook,
    Split,
    StepGraph,
    StepNode,
)

__all__ = ["build_graph"]


def build_graph(notebook: Notebook, split: Split, analysis: Analysis,
                extra: Iterable[Diagnostic] = ()) -> StepGraph:
    resolution = Resolver(notebook, split, analysis).run()
    diagnostics = [*resolution.diagnostics, *extra]
    tasks = [s for s in resolution.states if not s.code_only]
    names = {s.step.name for s in tasks}
    consumed: dict[str, dict[str, None]] = {}
    variables: dict[tuple[str, str], set[str]] = {}
    for state in tasks:
        for name, producer in state.inputs.items():
            consumed.setdefault(producer, {})[name] = None
            variables.setdefault((producer, state.step.name), set()).add(name)
        for target in state.step.after:
            if target in names:
                variables.setdefault((target, state.step.name), set())
    edges = tuple(Edge(s, t, tuple(sorted(v))) for (s, t), v in sorted(variables.items()))
    order = _order(notebook, tasks, edges, diagnostics)
    steps = tuple(_node(s, consumed.get(s.step.name, {})) for s in tasks)
    graph = StepGraph(notebook, steps, edges, analysis.parameters, order, (), analysis.cells,
                      resolution.code, resolution.data_names)
    from nb2pipe.graph.checks import graph_diagnostics

    return replace(graph, diagnostics=sort_diagnostics([*diagnostics,
                                                        *graph_diagnostics(graph)]))


def _order(notebook: Notebook, tasks: list[StepState], edges: tuple[Edge, ...],
           diagnostics: list[Diagnostic]) -> tuple[str, ...]:
    """A topological order, notebook order among independent steps; a cycle is an error."""
    position = {s.step.name: i for i, s in enumerate(tasks)}
    sorter: graphlib.TopologicalSorter[str] = graphlib.TopologicalSorter()
    for state in tasks:
        sorter.add(state.step.name)
    for edge in edges:
        sorter.add(edge.target, edge.source)
    try:
        sorter.prepare()
    except graphlib.CycleError as exc:
        cycle = list(exc.args[1])
        first = tasks[position[min(cycle, key=lambda n: position[n])]]
        culprits = sorted(f"after:{e.source} on '{e.target}'" for e in edges
                          if not e.variables and e.source in cycle and e.target in cycle)
        diagnostics.append(diagnostic(
            "NB202", "dependency cycle: " + " -> ".join(cycle), path=notebook.display_path,
            cell=notebook.cells[first.step.first_cell - 1],
            hint=f"remove {' or '.join(culprits)}" if culprits else None))
        return tuple(s.step.name for s in tasks)
    order: list[str] = []
    while sorter.is_active():
        ready = sorted(sorter.get_ready(), key=lambda n: position[n])
        order.extend(ready)
        sorter.done(*ready)
    return tuple(order)


def _node(state: StepState, outputs: dict[str, None]) -> StepNode:
    step = state.step
    return StepNode(
        name=step.name,
        cells=tuple(c.index for c in step.cells),
        uses=tuple(sorted(state.uses)),
        defines=tuple(sorted(state.defines)),
        mutates=tuple(sorted(state.mutates)),
        inputs=tuple(sorted(state.inputs.items())),
        parameters=tuple(sorted(state.parameters)),
        outputs=tuple(sorted(outputs)),
        code=tuple(sorted(state.code.values(),
                          key=lambda e: (e.span.cell, e.span.start, e.names))),
        after=tuple(sorted(step.after)),
        options=step.options,
        metrics=tuple(sorted(state.metrics)),
        first_cell=step.first_cell,
    )
