"""The differential tester (tests/semantics/): generated notebooks, each run as a kernel runs it
and as its generated steps, every value compared. A small seeded budget here; the long run is
benchmarks/differential.py. A diagnostic from `check` is an answer; a green check whose steps
fail or compute other values never is.
"""

from __future__ import annotations

import random

import pytest
from semantics.differential import Case, cases, run
from semantics.generator import (
    GIVEN_TO_LIBRARY,
    IDIOMS,
    LEFT_ALONE_BY_LIBRARY,
    OWN_MODULE,
    notebook_cells,
)
from semantics.harness import compare, notebook, run_flow

from nb2pipe.pipeline import notebook_graph

SEED = 20240611


def test_generated_notebooks_compute_what_the_notebook_computes() -> None:
    tally = run(SEED, 6, minimise=False)
    failures = [f"{f.outcome.kind} ({f.case.layout}): {f.outcome.detail}\n{f.case.text()}"
                for f in tally.failures]
    assert not failures, "\n\n".join(failures)
    assert tally.by_kind.get("ok", 0) >= tally.runs // 2, tally.by_kind  # mostly real cases


def test_the_generator_uses_every_idiom_and_is_seeded() -> None:
    rng = random.Random(1)
    used = {s.idiom for _ in range(200) for cell in notebook_cells(rng) for s in cell}
    names = {f.__name__ for f, _ in IDIOMS}
    assert len(used) >= 40, sorted(used)
    assert len(names) == len(IDIOMS)
    again = [c.text() for c in cases(3, 4)]
    assert again == [c.text() for c in cases(3, 4)]


def test_a_difference_is_found_and_minimised() -> None:
    """The tester is not blind: a pipeline that loses a change in place is caught."""
    from semantics.differential import shrink

    from nb2pipe.graph.resolve import Resolver

    original = Resolver._mutate
    try:
        Resolver._mutate = lambda *args, **kwargs: None  # type: ignore[method-assign]
        found = [(case, outcome) for case in cases(SEED, 6)
                 if (outcome := case.compare()).kind == "differs"]
        assert found, "no difference found with change tracking off"
        case, outcome = found[0]
        small = shrink(case, outcome)
        assert sum(len(c) for c in small.cells) < sum(len(c) for c in case.cells)
        assert small.compare().kind == "differs"
    finally:
        Resolver._mutate = original  # type: ignore[method-assign]


@pytest.mark.integration
def test_the_shortcut_runs_the_steps_as_flow_py_does(prefect_harness: None) -> None:
    """A slice through the real flow.py and Prefect (values through the store, as `verify`):
    the same outcome, value for value, as the in-process shortcut the fast tier uses."""
    chosen: list[Case] = [c for c in cases(SEED, 12) if c.layout != "untagged-start"]
    compared = 0
    for case in chosen:
        shortcut = case.compare()
        if shortcut.kind in ("notebook-failed", "diagnosed"):
            continue
        real = case.compare(pipeline=run_flow)
        assert (real.kind, real.names, real.compared) == (
            shortcut.kind, shortcut.names, shortcut.compared), case.text()
        compared += real.compared
        if compared >= 30:
            break
    assert compared >= 30  # values compared both ways


@pytest.mark.parametrize("layout", ["each-statement", "one-step"])
def test_late_reads_of_function_bodies_are_no_error(layout: str) -> None:
    """The idioms whose function bodies read names bound later, or nowhere, are answered
    with the notebook's values, not with an error (the notebook runs: no call fails)."""
    from semantics.generator import (
        Env,
        func_reads_name_defined_nowhere,
        func_value_reads_later_global,
    )

    env = Env(random.Random(SEED))
    env.kinds["n0"] = "int"
    made = [*func_reads_name_defined_nowhere(env), *(func_value_reads_later_global(env) or [])]
    sources = ["n0 = 1", *(s.code for s in made)]
    if layout == "one-step":
        sources = ["\n".join(sources)]
    outcome = compare([(source, (f"step:s{i}",)) for i, source in enumerate(sources)])
    assert outcome.kind == "ok", outcome


def _given_to_library(define: str, use: str) -> list[tuple[str, tuple[str, ...]]]:
    """The list made in one step, read before and after a step calling the function."""
    from semantics.generator import PRELUDE

    sources = [PRELUDE, "xs = [1, 2]", define.format(fn="prep", xs="xs"), "early = len(xs)",
               use.format(fn="prep", xs="xs"), "n = len(xs)\nlast = xs[-1]"]
    return [(source, (f"step:s{i}",)) for i, source in enumerate(sources)]


@pytest.mark.parametrize("label", [label for label, _, _ in GIVEN_TO_LIBRARY])
def test_a_function_giving_its_argument_to_a_library_call_changes_it(label: str) -> None:
    """`def prep(d): own_module.grow(d)` then `prep(data)`: the call changes data in the
    notebook, so the step after it takes data from that step, and the step before it the
    earlier data; likewise when the body gives a global, or gives the argument to a call whose
    result holds it (`Wrap(d).grow()`)."""
    _, define, use = next(v for v in GIVEN_TO_LIBRARY if v[0] == label)
    specs = _given_to_library(define, use)
    outcome = compare(specs, files=(OWN_MODULE,))
    assert (outcome.kind, outcome.compared) == ("ok", 4), outcome
    graph = notebook_graph(notebook(specs), "tags")
    assert "xs" in graph.step("s4").mutates
    assert graph.step("s5").inputs == (("xs", "s4"),)


@pytest.mark.parametrize("label", [label for label, _, _ in LEFT_ALONE_BY_LIBRARY])
def test_a_function_giving_its_argument_to_a_library_known_to_leave_it_alone(label: str) -> None:
    """The control: numpy and the standard library's pure modules do not change what a
    function body gives them, so the call is no change (no copy, no new producer)."""
    _, define, use = next(v for v in LEFT_ALONE_BY_LIBRARY if v[0] == label)
    specs = _given_to_library(define, use)
    assert compare(specs).kind == "ok"
    graph = notebook_graph(notebook(specs), "tags")
    assert not any("xs" in step.mutates for step in graph.steps)
    assert graph.step("s5").inputs == (("xs", "s1"),)
