"""Stage 4b, graph: Split + Analysis -> StepGraph (steps, per-variable edges, an order).

Edges come from the resolved inputs of every step (resolve.py) and from `after:` tags; graphlib
orders the steps and finds cycles; independent steps stay unconnected, so they run in parallel.
"""

from __future__ import annotations

import ast
import graphlib
from collections.abc import Iterable
from dataclasses import replace

from nb2pipe.analysis import Analysis
from nb2pipe.analysis.bindings import definitely_bound
from nb2pipe.diagnostics import diagnostic, sort_diagnostics
from nb2pipe.graph.resolve import Resolver
from nb2pipe.graph.state import StepState
from nb2pipe.model import (
    Diagnostic,
    Edge,
    Notebook,
    Span,
    Split,
    StepGraph,
    StepNode,
)

__all__ = ["build_graph"]


def build_graph(notebook: Notebook, split: Split, analysis: Analysis,
                extra: Iterable[Diagnostic] = ()) -> StepGraph:
    resolution = Resolver(notebook, split, analysis).run()
    values: dict[tuple[Span, tuple[str, ...]], str] = {}
    while resolution.conflicts:  # definitions that must be values where they are defined
        values.update(resolution.conflicts)
        resolution = Resolver(notebook, split, analysis, values).run()
    diagnostics = [*resolution.diagnostics, *extra]
    tasks = [s for s in resolution.states if not s.code_only]
    after = _task_after(resolution.states)
    consumed: dict[str, dict[str, None]] = {}
    variables: dict[tuple[str, str], set[str]] = {}
    for state in tasks:
        for name, producer in state.inputs.items():
            consumed.setdefault(producer, {})[name] = None
            variables.setdefault((producer, state.step.name), set()).add(name)
        for target in after[state.step.name]:
            variables.setdefault((target, state.step.name), set())
    edges = tuple(Edge(s, t, tuple(sorted(v))) for (s, t), v in sorted(variables.items()))
    order = _order(notebook, tasks, edges, diagnostics)
    unparsed = any(d.code in ("NB108", "NB112") for d in diagnostics)
    if not tasks and resolution.states and not unparsed:
        diagnostics.append(_nothing_runs(notebook, resolution.states))
    steps = _unbound_handed_on(tuple(_node(s, consumed.get(s.step.name, {}), after[s.step.name])
                                     for s in tasks), {s.step.name: s for s in tasks})
    graph = StepGraph(notebook, steps, edges, analysis.parameters, order, (), analysis.cells,
                      resolution.code, resolution.data_names, resolution.random_states)
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


def _task_after(states: list[StepState]) -> dict[str, tuple[str, ...]]:
    """Each step's `after:` steps (and the steps it follows for module state), as tasks: a
    step made only of definitions is code emitted where it is needed, not a task, so
    `after:` it means after the tasks it comes after."""
    by_name = {s.step.name: s for s in states}
    found: dict[str, tuple[str, ...]] = {}

    def tasks_of(name: str, seen: frozenset[str]) -> list[str]:
        state = by_name.get(name)
        if state is None or name in seen:
            return []
        if not state.code_only:
            return [name]
        return [t for target in state.step.after for t in tasks_of(target, seen | {name})]

    for state in states:
        found[state.step.name] = tuple(sorted({
            t for target in (*state.step.after, *state.after_state)
            for t in tasks_of(target, frozenset({state.step.name})) if t != state.step.name
        }))
    return found


def _nothing_runs(notebook: Notebook, states: list[StepState]) -> Diagnostic:
    first = states[0].step
    return diagnostic(
        "NB111", "no step runs any code: every step holds only imports, definitions or "
        "configuration, which nb2pipe emits where steps need them, so there is no pipeline",
        path=notebook.display_path, cell=notebook.cells[first.first_cell - 1],
        hint="add the cells that compute something (untag them if they are `skip`)")


def _node(state: StepState, outputs: dict[str, None], after: tuple[str, ...]) -> StepNode:
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
        after=after,
        options=step.options,
        metrics=tuple(sorted(state.metrics)),
        first_cell=step.first_cell,
        title=step.title,
        module_reads=tuple(sorted(state.module_reads)),
        late_globals=tuple(sorted((name, tuple(sorted(names)))
                                  for name, names in state.late_globals.items())),
    )


def _unbound_handed_on(nodes: tuple[StepNode, ...], states: dict[str, StepState]
                       ) -> tuple[StepNode, ...]:
    """Names a step may return unbound: those its cells bind only conditionally with no
    earlier value, and those it was given unbound and passes on (pipeline order, so a
    producer comes first), less what every path through its cells binds (`if`/`else` both,
    a `try` and its handlers)."""
    maybe: dict[str, set[str]] = {}
    done = []
    for node in nodes:
        given = {v for v, producer in node.inputs if v in maybe.get(producer, ())}
        wanted = (set(states[node.name].maybe_unbound) | given) & set(node.returns)
        maybe[node.name] = wanted - _definitely_bound(states[node.name]) if wanted else set()
        done.append(replace(node, maybe_unbound=tuple(sorted(maybe[node.name])),
                            unbound_inputs=tuple(sorted(given))))
    return tuple(done)


def _definitely_bound(state: StepState) -> frozenset[str]:
    body: list[ast.stmt] = []
    for cell in state.step.cells:
        try:
            body.extend(ast.parse(cell.code or cell.source).body)
        except SyntaxError:
            return frozenset()
    return definitely_bound(body)
