"""The step graph's own queries: what a step reads and returns, who produces and who consumes a
variable, what runs before and after a step, and which edges lie on a cycle."""

from __future__ import annotations

from support import graph_of


def test_a_steps_reads_returns_and_producers() -> None:
    g = graph_of(("rate = 2", "parameters"), ("a = 1\nb = 2", "step:load"),
                 ("c = a * rate\nd = b\nf = 3\nprint(f)", "step:use", "metrics"),
                 ("e = c + d", "step:last"))
    use = g.step("use")
    assert use.reads == ("a", "b", "rate")
    assert use.returns == ("c", "d", "f")  # what `last` takes, and the metric it prints
    assert use.upstream == ("load",)
    assert (use.producer("a"), use.producer("rate"), use.producer("e")) == ("load", None, None)
    assert g.step("last").reads == ("c", "d") and g.step("last").returns == ()


def test_consumers_are_in_notebook_order() -> None:
    g = graph_of(("x = 1", "step:make"), ("z = x", "step:second"), ("y = x", "step:first"),
                 ("w = 0", "step:other"))
    assert g.consumers("make", "x") == ("second", "first")
    assert g.consumers("make", "w") == () and g.consumers("nowhere", "x") == ()


def test_holders_follow_a_value_handed_on_back_to_its_maker() -> None:
    g = graph_of(("items = []", "step:make"), ("items.append(1)", "step:grow"),
                 ("items.append(2)", "step:more"), ("n = len(items)", "step:count"))
    assert g.step("count").producer("items") == "more"
    assert g.holders("more", "items") == ("more", "grow", "make")
    assert g.holders("make", "items") == ("make",)


def test_ancestors_and_descendants_follow_data_and_after_edges() -> None:
    g = graph_of(("a = 1", "step:top"), ("b = a", "step:left"), ("c = a", "step:right"),
                 ("d = b + c", "step:join"), ("print(1)", "step:report", "after:join"),
                 ("z = 0", "step:alone"))
    assert g.descendants("top") == {"left", "right", "join", "report"}
    assert g.descendants("left") == {"join", "report"} and g.descendants("report") == set()
    assert g.ancestors("report") == {"top", "left", "right", "join"}
    assert g.ancestors("left") == {"top"}
    assert g.ancestors("alone") == g.descendants("alone") == set()


def test_cycle_edges_are_those_whose_ends_reach_each_other() -> None:
    # Two cycles (one <-> two, three <-> four) joined by an edge that is on neither.
    g = graph_of(("a = 1", "step:one", "after:two"), ("b = a", "step:two"),
                 ("c = b", "step:three", "after:four"), ("d = c", "step:four"),
                 ("e = d", "step:tail"))
    assert {(e.source, e.target) for e in g.edges} == {
        ("one", "two"), ("two", "one"), ("two", "three"), ("three", "four"), ("four", "three"),
        ("four", "tail")}
    assert g.cycle_edges() == (("four", "three"), ("one", "two"), ("three", "four"),
                               ("two", "one"))
    assert g.descendants("one") == {"one", "two", "three", "four", "tail"}  # itself: a cycle
    assert graph_of(("a = 1", "step:one"), ("b = a", "step:two")).cycle_edges() == ()
