"""The step graph: reaching definitions, edges, order, and the checks that need the whole graph."""
