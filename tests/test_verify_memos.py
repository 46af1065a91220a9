"""verify and memos a plain method keeps under a plain name: an object whose `summary()` kept
what it computed and its copy whose didn't are the same value, and verify says so by name;
a change lost on the way (a fit, a count, an assigned or appended value) is still a
divergence, which names the attributes it is in."""

from __future__ import annotations

import pickle
from typing import Any

import numpy as np
import pytest
from support import graph_of

from nb2pipe.execute.differences import attribute_differences, only_memos, only_method_state
from nb2pipe.execute.verify import Key, compare
from nb2pipe.runtime.derived import derived_attributes
from nb2pipe.runtime.fingerprint import fingerprint, same_fingerprint


class Results:
    """A fitted result as libraries write them: what defines it, and methods that keep what
    they computed from it (memos), beside methods that change it."""

    def __init__(self, params: list[float]) -> None:
        self.params = np.asarray(params)
        self.data = np.arange(6.0).reshape(3, 2)
        self._columns: list[int] | None = None  # "not computed yet"
        self.count = 0
        self.log: list[int] = []

    # memos: computed from the instance alone, callable with it alone
    def summary(self, title: str | None = None, slim: bool = False) -> str:
        self.diagn = {"norm": float(np.linalg.norm(self.params))}
        if not slim:  # a fresh value completed: still made from the instance only
            self.diagn.update(mean=float(self.data.mean()))
        return f"{title}: {self.diagn}"

    def in_sample(self) -> np.ndarray:
        self._columns = [i for i in range(self.data.shape[1]) if self.data[:, i].any()]
        return self.data[:, self._columns]

    # changes
    def fit(self, X: np.ndarray) -> Results:
        self.coef_ = X.mean(axis=0)
        self.n_features_in_ = self.data.shape[1]  # from the instance, but only when given X
        return self

    def tick(self) -> int:
        self.count = self.count + 1
        return self.count

    def configure(self, level: int = 1) -> None:
        self.level = self.params * level

    def set_mode(self, fast: bool = False) -> None:
        if fast:
            self.mode = self.params.max()
        else:
            self.mode = self.params.min()

    def mark_done(self) -> None:
        self.done = True

    def record(self, value: int = 0) -> None:
        self.log.append(value)


class Wrapper:
    """A results wrapper as statsmodels returns: the memo is one object down."""

    def __init__(self, results: Results) -> None:
        self._results = results

    def summary(self) -> str:
        return self._results.summary()


def copied(value: Any) -> Any:
    return pickle.loads(pickle.dumps(value))


def differences(notebook: Any, pipeline: Any) -> Any:
    a, b = fingerprint(notebook), fingerprint(pipeline)
    assert not same_fingerprint(a, b)  # the fingerprints differ: the rule decides
    return attribute_differences(a, b)


def test_the_class_says_which_attributes_it_derives_from_the_rest() -> None:
    assert derived_attributes(Results) == {"diagn", "_columns"}
    assert derived_attributes(Wrapper) == set()


MEMOS = {
    "summary": (lambda r: r.summary(), ".diagn", "only in the notebook"),
    "summary, slim": (lambda r: r.summary(slim=True), ".diagn", "only in the notebook"),
    "in_sample": (lambda r: r.in_sample(), "._columns", "None in the pipeline"),
}


@pytest.mark.parametrize("read", sorted(MEMOS))
def test_what_a_plain_method_kept_is_a_memo(read: str) -> None:
    call, path, how = MEMOS[read]
    read_one, unread = Results([1.0, 2.0]), Results([1.0, 2.0])
    call(read_one)
    found = differences(read_one, copied(unread))
    assert only_memos(found)
    assert [(d.path, d.how) for d in found] == [(path, how)]
    assert only_memos(differences(copied(unread), read_one))  # the pipeline's may have it


def test_a_memo_one_object_down_is_a_memo() -> None:
    read_one, unread = Wrapper(Results([1.0, 2.0])), Wrapper(Results([1.0, 2.0]))
    read_one.summary()
    found = differences(read_one, copied(unread))
    assert only_memos(found) and [d.path for d in found] == ["._results.diagn"]


def _lost_fit(r: Results) -> None:
    r.fit(np.ones((3, 2)))


def _assigned(r: Results) -> None:
    r.params = np.asarray([1.0, 3.0])


def _added_by_a_cell(r: Results) -> None:
    r.note = "checked"


def _other_memo(r: Results) -> None:
    r.summary()
    r.diagn = {"norm": 0.0}  # the memo's place, another value


# (the change, an attribute it is in, whether only methods store what differs)
CHANGES = {
    "a fit": (_lost_fit, ".n_features_in_", True),
    "a count": (lambda r: r.tick(), ".count", True),
    "an argument kept": (lambda r: r.configure(level=5), ".level", True),
    "a mode chosen by an argument": (lambda r: r.set_mode(fast=True), ".mode", True),
    "a flag": (lambda r: r.mark_done(), ".done", True),
    "an append": (lambda r: r.record(), ".log", True),
    "an assigned value": (_assigned, ".params", False),
    "an attribute a cell adds": (_added_by_a_cell, ".note", False),
    "another value where a memo would be": (_other_memo, ".diagn", False),
}


@pytest.mark.parametrize("change", sorted(CHANGES))
def test_a_lost_change_is_never_a_memo(change: str) -> None:
    """Never a memo. What methods of the class store, but not from the instance alone, is
    its own outcome (verify cannot tell whether a later call reads it); what a cell assigns,
    or another value where a memo would be, is a divergence."""
    call, path, by_methods = CHANGES[change]
    changed, lost = Results([1.0, 2.0]), Results([1.0, 2.0])
    if change == "another value where a memo would be":
        lost.summary()  # both kept it; they differ in what
    call(changed)
    found = differences(changed, copied(lost))
    assert not only_memos(found)
    assert path in {d.path for d in found}
    assert only_method_state(found) is by_methods


def test_a_change_beside_a_memo_is_still_a_change() -> None:
    changed, lost = Results([1.0, 2.0]), Results([1.0, 2.0])
    changed.summary()
    changed.tick()
    found = differences(changed, copied(lost))
    assert not only_memos(found) and only_method_state(found)
    assert {d.path for d in found} == {".diagn", ".count"}
    changed.note = "checked"  # and a cell's
    assert not only_method_state(differences(changed, copied(lost)))


def test_a_difference_not_in_attributes_is_not_explained_by_them() -> None:
    assert differences([1, 2], [1]) is None  # a list appended to
    one, other = Results([1.0, 2.0]), Results([1.0, 2.0])
    assert differences({"r": one, "n": 1}, {"r": other, "n": 2}) is None
    assert differences(one, Wrapper(other)) is None  # another type


def test_a_class_that_stores_under_computed_names_derives_nothing() -> None:
    class Dynamic:
        def __init__(self) -> None:
            self.data = [1, 2]

        def summary(self) -> None:
            self.total = sum(self.data)

        def load(self, name: str = "total") -> None:
            setattr(self, name, 0)

    assert derived_attributes(Dynamic) == set()


MEMO = graph_of(("r = dict()", "step:fit"), ("r.summary()", "step:show"),
                ("v = r.get(1)", "step:use"))


def _runs(r: Any, pipeline: bool = False) -> dict[Key, Any]:
    return {("fit", "outputs", "r"): fingerprint(r), ("use", "inputs", "r"): fingerprint(r),
            ("use", "outputs", "v"): fingerprint(1),
            ("fit" if pipeline else "", "final", "r"): fingerprint(r),
            ("use" if pipeline else "", "final", "v"): fingerprint(1)}


def test_verify_names_memos_and_passes() -> None:
    """The notebook's `r` went through `r.summary()` in a step that only reads it; the step
    after reads the pipeline's `r` as its producer left it."""
    made, shown = Results([1.0, 2.0]), Results([1.0, 2.0])
    first = _runs(made)
    shown.summary()
    notebook = {**first, **{k: v for k, v in _runs(shown).items() if k[:2] != ("fit", "outputs")}}
    verdict = compare(MEMO, notebook, dict(notebook), _runs(copied(made), pipeline=True))
    assert verdict.divergence is None and verdict.ok, verdict.divergence
    assert {(key, tuple(d.path for d in found)) for key, found in verdict.memos} == {
        (("use", "inputs", "r"), (".diagn",)), (("fit", "final", "r"), (".diagn",))}


def _verdict(change: Any) -> Any:
    made, changed = Results([1.0, 2.0]), Results([1.0, 2.0])
    change(changed)
    notebook = {**_runs(made), **{k: v for k, v in _runs(changed).items()
                                  if k[:2] != ("fit", "outputs")}}
    return compare(MEMO, notebook, dict(notebook), _runs(copied(made), pipeline=True))


def test_verify_never_passes_a_lost_fit_and_names_what_it_kept() -> None:
    verdict = _verdict(_lost_fit)
    assert not verdict.ok and verdict.divergence is None and not verdict.memos
    assert [(key, [d.describe("r") for d in found]) for key, found in verdict.method_state] == [
        (("use", "inputs", "r"), ["r.coef_ (only in the notebook)",
                                  "r.n_features_in_ (only in the notebook)"]),
        (("fit", "final", "r"), ["r.coef_ (only in the notebook)",
                                 "r.n_features_in_ (only in the notebook)"])]


def test_verify_reports_a_lost_assignment_as_a_divergence_naming_its_attributes() -> None:
    verdict = _verdict(_assigned)
    assert verdict.divergence is not None and not verdict.memos and not verdict.method_state
    assert (verdict.divergence.step, verdict.divergence.name) == ("use", "r")
    assert "it differs only in the attributes r.params (other values)" in (
        verdict.divergence.describe("memo.ipynb"))


def test_library_memos_and_changes() -> None:
    """statsmodels' `summary()` keeps `diagn` on the results; `DeterministicProcess.in_sample()`
    keeps `_retain_cols`: memos. A scikit-learn fit keeps what it was given: a change."""
    pd = pytest.importorskip("pandas")
    smf = pytest.importorskip("statsmodels.formula.api")
    deterministic = pytest.importorskip("statsmodels.tsa.deterministic")
    linear = pytest.importorskip("sklearn.linear_model")

    def fitted() -> Any:  # patsy reads the caller's frame: not at a module's top level
        frame = pd.DataFrame({"x": [1, 2, 3, 4, 5, 6], "y": [1, 3, 2, 5, 4, 6]})
        return smf.ols("y ~ x", data=frame).fit()

    shown, unread = fitted(), fitted()
    with pytest.warns(Warning):  # too few rows for its normality test
        shown.summary()
    found = differences(shown, unread)
    assert only_memos(found) and [d.path for d in found] == ["._results.diagn"]
    index = pd.RangeIndex(0, 20)
    process, fresh = (deterministic.DeterministicProcess(index, constant=True, order=1,
                                                         period=4, fourier=1)
                      for _ in range(2))
    process.in_sample()
    assert only_memos(differences(process, copied(fresh)))
    model = linear.LinearRegression()
    trained = copied(model).fit(np.arange(6.0).reshape(3, 2), np.arange(3.0))
    assert not only_memos(differences(trained, model))


def test_an_attribute_a_method_deletes_is_not_derived() -> None:
    class Reset:
        def __init__(self) -> None:
            self.data = [1, 2]

        def total(self) -> int:
            self.sum = sum(self.data)
            return self.sum

        def clear(self) -> None:
            del self.sum

    assert derived_attributes(Reset) == set()
