"""What the resolver knows of one step while it replays the notebook: the bindings it sees, what
it reads, defines and changes (shared by resolve and the explanations it gives)."""

from __future__ import annotations

from dataclasses import dataclass, field

from nb2pipe.model import CodeEntity, Span, Step


@dataclass
class _Binding:
    kind: str  # "data" | "param" | "code"
    step: str | None
    entity: CodeEntity | None = None
    cell: int = 0
    setup: list[CodeEntity] = field(default_factory=list)  # `pd.set_option(...)` after an import
    # Where the name was bound to this object: (cell, line), kept when the object is changed
    # in place (a new binding is a new object; a change is the same one).
    bound: tuple[int, int] = (0, 0)


@dataclass
class StepState:
    step: Step
    local: dict[str, _Binding] = field(default_factory=dict)
    uses: dict[str, None] = field(default_factory=dict)
    defines: dict[str, None] = field(default_factory=dict)
    mutates: dict[str, None] = field(default_factory=dict)
    inputs: dict[str, str] = field(default_factory=dict)
    parameters: dict[str, None] = field(default_factory=dict)
    code: dict[tuple[Span, tuple[str, ...]], CodeEntity] = field(default_factory=dict)
    # Late-bound reads (name, cell, line, owner): fine if bound by the end of the step. `owner`:
    # the function made a value here whose body reads the name as a global (see resolve.py).
    soft: list[tuple[str, int, int, str | None]] = field(default_factory=list)
    # Functions this step takes as values whose bodies read globals bound after they were made:
    # value name -> those names, given to the function before the step's code runs.
    late_globals: dict[str, dict[str, None]] = field(default_factory=dict)
    # Earlier steps it runs after, with no value between them: they use the same module state.
    after_state: dict[str, None] = field(default_factory=dict)
    deleted: dict[str, tuple[int, int]] = field(default_factory=dict)
    metrics: dict[str, None] = field(default_factory=dict)
    code_only: bool = True
    # Names read from module level (code, builtins) before the step bound them itself.
    module_reads: dict[str, None] = field(default_factory=dict)
    # Names bound only conditionally here (in a loop, if, try): the earlier value may survive,
    # so the step passes it on, but only if something reads the name (a loop variable reused
    # in many cells must not chain the steps together).
    passthrough: dict[str, tuple[_Binding, tuple[int, ...]]] = field(default_factory=dict)
    # The values each input shared objects with when the step read it: the step may bind the
    # name again afterwards (`L = L + [2]`), which ends the sharing from there on only.
    shared_at_read: dict[str, set[str]] = field(default_factory=dict)
    # Names the step binds only conditionally (an `if`, a loop, a `try`) with no earlier value
    # to fall back on: when the condition does not hold they stay unbound, as in the notebook.
    maybe_unbound: dict[str, None] = field(default_factory=dict)
