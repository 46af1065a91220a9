"""Definitions that are values: a def or class the pipeline hands on as an object, made once
where the notebook makes it, because emitting its code again where it is used would compute
something else (it is changed in place later, what its definition reads changes before it is
used, its decorator changes something or keeps state, its calls change its own default).
Part of the resolver (resolve.py), which sets the attributes below."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from nb2pipe.graph.state import StepState, _Binding
from nb2pipe.model import Cell, CodeEntity, FunctionInfo, Span


class DefinitionValues:
    """What the resolver knows of definitions that are values."""

    cells: dict[int, Cell]
    bindings: dict[str, _Binding]
    data_names: set[str]
    value_classes: set[str]  # the classes among them
    instances: dict[str, set[str]]  # class -> names bound to its instances
    fixed_reads: set[tuple[str, Span]]  # NB308 reported
    generator_values: dict[str, tuple[int, int, str]]  # name -> cell, line, function
    unpicklable_reported: set[tuple[str, str]]  # NB304 reported: (value, producing step)
    formula_values: dict[str, tuple[int, int, str]]  # name -> cell, line, notebook function
    # value -> the code (imports, functions) its body reads, where each was bound when it was
    # made: a step calling it after a cell binds one anew gives it the new one
    code_globals: dict[str, dict[str, tuple[int, int]]]
    values: Mapping[tuple[Span, tuple[str, ...]], str]
    conflicts: dict[tuple[Span, tuple[str, ...]], str]

    if TYPE_CHECKING:  # the resolver's own
        def _read(self, state: StepState, name: str, cell: int, line: int, soft: bool,
                  seen: set[tuple[Span, tuple[str, ...]]], block: tuple[int, ...] = (), *,
                  optional: bool = False, reference: bool = False,
                  direct: bool = True, owner: str | None = None) -> None: ...

        def _expand(self, state: StepState, entity: CodeEntity, cell: int, line: int,
                    seen: set[tuple[Span, tuple[str, ...]]],
                    owner: str | None = None) -> None: ...

        def _function(self, state: StepState, name: str) -> FunctionInfo | None: ...

        def _report(self, code: str, message: str, cell: Cell, line: int | None,
                    hint: str | None) -> None: ...

    def _changed_definition(self, state: StepState, name: str, cell: int, line: int) -> bool:
        """A function or class changed in place (`Cfg.lr = 0.5`, `f.calls += 1`, a call that
        changes its default argument): from here on it is a value, the object this step
        leaves, not code emitted again where it is used (which would undo the change)."""
        binding = state.local.get(name) or self.bindings.get(name)
        if binding is None:
            return False
        if binding.kind == "data":
            return name in self.value_classes
        entity = binding.entity
        if entity is None or entity.kind not in ("function", "class"):
            return False
        if state.local.get(name) is None:  # its code runs here first (what it reads, below)
            self._read(state, name, cell, line, False, set(), reference=True)
            # Other steps may hold what it made before (instances of a class, a function's
            # results): it must be the one object throughout, a value from its definition on.
            self.conflicts[(entity.span, entity.names)] = f"cell {cell} changes it in place"
        self._becomes_value(state, name, entity, cell, line, "it is changed in place here",
                            binding.bound)
        return True

    def _made_as_value(self, state: StepState, entity: CodeEntity) -> str | None:
        """Why a def or class is a value where it is defined, not code to emit again where it
        is used: what it reads when it is defined (defaults, decorators, a class body) is
        notebook data, which may change before it is used; or a decorator changes something
        (`@register` adding it to a registry), which must happen once, here."""
        if entity.kind not in ("function", "class"):
            return None
        forced = self.values.get((entity.span, entity.names))
        if forced is not None:
            return forced
        for name in entity.decorators:
            binding = state.local.get(name) or self.bindings.get(name)
            if binding is None:
                continue
            if binding.kind == "data":
                return f"its decorator changes '{name}'"
            info = self._function(state, name)
            if info is not None and (info.mutated_params or info.free_mutations
                                     or info.global_writes or info.stateful):
                return f"its decorator '{name}' changes what it is given or notebook values"
        return None

    def _becomes_value(self, state: StepState, name: str, entity: CodeEntity, cell: int,
                       line: int, why: str, bound: tuple[int, int]) -> None:
        """`name` (a def or class) is data from here on: this step leaves the object."""
        self.data_names.add(name)
        state.code_only = False
        state.defines[name] = None
        # (its code stays known: what calling it does to other values)
        state.local[name] = _Binding("data", state.step.name, entity, cell, bound=bound)
        if entity.kind == "class":
            self.value_classes.add(name)
        info = entity.function
        if info is None:
            return
        # Its code, when called later, reads these as the step that makes it has them.
        self._expand(state, entity, cell, line, set(), owner=name)
        for read in info.free_reads:  # code it finds as globals: a later cell may define anew
            found = state.local.get(read) or self.bindings.get(read)
            if found is not None and found.kind == "code" and read != name:
                self.code_globals.setdefault(name, {})[read] = found.bound
        late = [n for n in (*info.free_reads, *info.global_writes)
                if (b := state.local.get(n) or self.bindings.get(n)) is not None
                and b.kind != "code" and n != name]
        if late and (name, entity.span) not in self.fixed_reads:
            self.fixed_reads.add((name, entity.span))
            self._report(
                "NB308", f"'{name}' is a value from cell {cell} on ({why}), so when it runs in "
                f"a later step its code reads {', '.join(repr(n) for n in late)} as step "
                f"'{state.step.name}' has {'them' if len(late) > 1 else 'it'}, not as the "
                f"notebook has {'them' if len(late) > 1 else 'it'} when it is called",
                self.cells[cell], line,
                f"pass {', '.join(late)} to '{name}' as argument{'s' if len(late) > 1 else ''}")

    def _first_report(self, name: str, producer: str) -> bool:
        """NB304 for a value that cannot be pickled: once per value and producing step."""
        if (name, producer) in self.unpicklable_reported:
            return False
        self.unpicklable_reported.add((name, producer))
        return True

    def _check_generator(self, state: StepState, name: str, producer: str) -> None:
        """A generator object (`it = numbers()`, numbers a generator function) cannot be
        pickled: it cannot reach another step in another process."""
        made = self.generator_values.get(name)
        if made is None or not self._first_report(name, producer):
            return
        cell, line, function = made
        self._report("NB304", f"'{name}' (a generator, made by {function}()) is passed from "
                     f"step '{producer}' to '{state.step.name}'; it cannot be pickled, so it "
                     "cannot cross processes or be cached", self.cells[cell], line,
                     "make it in the step that uses it, or pass what it yields "
                     f"(`{name} = list({function}())`)")

    def _check_formula_value(self, state: StepState, name: str, producer: str) -> None:
        """A statsmodels model fitted from a formula that names the notebook's function: when
        unpickled, statsmodels evaluates the formula again in frames of its own, where the
        function is not: it cannot reach another step in another process."""
        made = self.formula_values.get(name)
        if made is None or not self._first_report(name, producer):
            return
        cell, line, function = made
        self._report("NB304", f"'{name}' (fitted from a formula naming the notebook's "
                     f"'{function}') is passed from step '{producer}' to '{state.step.name}'; "
                     "statsmodels evaluates the formula again when it is unpickled, where "
                     f"'{function}' is not defined, so it cannot cross processes or be cached",
                     self.cells[cell], line,
                     f"use '{name}' in the step that fits it (take its params or summary there), "
                     "or compute the column before the formula names it")

    def _wrapped_with_state(self, state: StepState, name: str) -> bool:
        """`@counted def f`: what the notebook calls is what the decorator made, which keeps
        state between calls when the decorator's inner function changes it."""
        binding = state.local.get(name) or self.bindings.get(name)
        if binding is None or binding.entity is None:
            return False
        return any((info := self._function(state, d)) is not None and info.closes_over_state
                   for d in binding.entity.decorators)

    def _bound(self, state: StepState, name: str) -> tuple[int, int] | None:
        binding = state.local.get(name) or self.bindings.get(name)
        return binding.bound if binding is not None else None

    def _is_class(self, state: StepState, name: str) -> bool:
        binding = state.local.get(name) or self.bindings.get(name)
        return name in self.value_classes or (
            binding is not None and binding.entity is not None and binding.entity.kind == "class")

    def _forget_instance(self, name: str) -> None:
        for instances in self.instances.values():
            instances.discard(name)
