"""Fingerprints say what defines a value, not what it memoised as it was read: an object whose
attributes were read in a notebook cell and its copy that a step never read are the same value,
while a real difference in what defines it is still caught."""

from __future__ import annotations

import functools
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from nb2pipe.runtime.compare import assert_same
from nb2pipe.runtime.fingerprint import fingerprint, same_fingerprint


def _cached(function: Any) -> Any:
    """A memoising attribute as pandas and statsmodels write theirs: the value kept in the
    instance's `_cache` dict, the descriptor a data descriptor that refuses writes."""

    class Cached:
        def __get__(self, instance: Any, owner: type | None = None) -> Any:
            if instance is None:
                return self
            cache = instance.__dict__.setdefault("_cache", {})
            if function.__name__ not in cache:
                cache[function.__name__] = function(instance)
            return cache[function.__name__]

        def __set__(self, instance: Any, value: Any) -> None:
            raise AttributeError(function.__name__)

    held = Cached()
    held.fget = function  # type: ignore[attr-defined]  # where its getter's code is
    return held


class Fit:
    """A fitted model of the kind real libraries return: what defines it, and memos."""

    def __init__(self, params: list[float], data: np.ndarray) -> None:
        self.params = np.asarray(params)
        self.data = data

    @_cached
    def fitted(self) -> np.ndarray:
        return self.data @ self.params

    @_cached
    def scale(self) -> float:
        self.resid_sq = (self.data.sum(axis=1) - self.fitted) ** 2  # stored on the way
        self.__dict__["_n"] = len(self.data)
        return float(self.resid_sq.mean())

    @functools.cached_property
    def norm(self) -> float:
        return float(np.linalg.norm(self.params))

    def in_sample(self) -> np.ndarray:  # a method that keeps what it made
        if getattr(self, "_cached_in_sample", None) is None:
            self._cached_in_sample = self.data[:2]
        return self._cached_in_sample


def _fit(params: list[float] | None = None) -> Fit:
    return Fit(params or [1.0, 2.0], np.arange(6.0).reshape(3, 2))


@pytest.mark.parametrize("read", ["fitted", "scale", "norm", "in_sample"])
def test_what_an_object_memoised_as_it_was_read_is_not_part_of_its_value(read: str) -> None:
    unread, fit = _fit(), _fit()
    getattr(fit, read) if read != "in_sample" else fit.in_sample()
    assert same_fingerprint(fingerprint(fit), fingerprint(unread))
    assert same_fingerprint(fingerprint(fit), fingerprint(pickle.loads(pickle.dumps(unread))))
    assert_same(fit, unread)  # the generated tests compare objects the same way


@pytest.mark.parametrize("read", ["", "fitted", "scale", "norm"])
def test_a_real_difference_in_a_memoising_object_is_still_caught(read: str) -> None:
    fit, other = _fit(), _fit([1.0, 2.5])
    if read:
        getattr(fit, read)
        getattr(other, read)
    assert not same_fingerprint(fingerprint(fit), fingerprint(other))
    changed = _fit()
    changed.data = changed.data * 2  # a later cell changes what defines it
    assert not same_fingerprint(fingerprint(_fit()), fingerprint(changed))
    with pytest.raises(AssertionError):
        assert_same(other, fit)


def test_a_public_cache_and_a_plain_property_backed_value_still_count() -> None:
    class Memo:
        def __init__(self) -> None:
            self.cache: dict[str, int] = {}  # the notebook's own data, named `cache`
            self._use_cache = True
            self._values = {"a": 1}

        @property
        def a(self) -> int:
            return self._values["a"]

    one, two = Memo(), Memo()
    two._use_cache = False  # a switch, not a memo
    assert not same_fingerprint(fingerprint(one), fingerprint(two))
    two = Memo()
    two.cache["k"] = 1
    assert not same_fingerprint(fingerprint(one), fingerprint(two))
    two = Memo()
    two._values["a"] = 2
    assert not same_fingerprint(fingerprint(one), fingerprint(two))


def test_a_type_that_says_how_it_is_pickled_is_fingerprinted_by_that() -> None:
    # A path memoises its string and its hash (a process's own) in slots; an Index its
    # `_cache`: what a cell happened to ask of them is not part of them.
    path, read = Path("/data/x.csv"), Path("/data/x.csv")
    str(read), hash(read), read.parts  # reads that fill memos
    assert same_fingerprint(fingerprint(path), fingerprint(read))
    assert not same_fingerprint(fingerprint(path), fingerprint(Path("/data/y.csv")))
    index, asked = pd.Index(["a", "b"]), pd.Index(["a", "b"])
    asked.is_unique, asked.inferred_type, asked.get_loc("a")
    assert same_fingerprint(fingerprint(index), fingerprint(asked))
    assert not same_fingerprint(fingerprint(index), fingerprint(pd.Index(["a", "c"])))
    assert not same_fingerprint(fingerprint(index), fingerprint(pd.Index(["a", "b"], name="n")))


def test_a_memo_in_the_state_a_reduction_gives_as_a_tuple_is_left_out() -> None:
    """A DatetimeIndex's array pickles its `__dict__` as the last part of a tuple state
    (dtype, data, attributes): what plotting it memoised there (`_creso`) is not part of it."""
    index, plotted = (pd.DatetimeIndex(["2020-01-01", "2020-04-01"]) for _ in range(2))
    plotted._data._creso  # noqa: B018 - a read that fills its memo, as plotting does
    assert same_fingerprint(fingerprint(index), fingerprint(plotted))
    assert not same_fingerprint(fingerprint(index),
                                fingerprint(pd.DatetimeIndex(["2020-01-01", "2020-04-02"])))


def test_a_fitted_statsmodels_result_is_the_same_whatever_was_read_of_it() -> None:
    sm = pytest.importorskip("statsmodels.api")
    rng = np.random.default_rng(0)
    x = sm.add_constant(rng.normal(size=(40, 2)))
    y = x @ [1.0, 2.0, 3.0] + rng.normal(size=40)
    unread, read = sm.OLS(y, x).fit(), sm.OLS(y, x).fit()
    read.bse, read.HC0_se, read.nobs, read.rsquared  # noqa: B018 - they fill its memos
    assert same_fingerprint(fingerprint(read), fingerprint(unread))
    other = sm.OLS(y + 1e-3 * rng.normal(size=40), x).fit()
    assert not same_fingerprint(fingerprint(unread), fingerprint(other))


def test_an_object_a_library_holds_by_name_is_referred_to_not_walked() -> None:
    # A fitted result holds `scipy.stats.t`, which holds numpy's global generator: a draw in
    # a later cell changes that, not the result.
    stats = pytest.importorskip("scipy.stats")

    class Prediction:
        def __init__(self, predicted: list[float]) -> None:
            self.predicted = np.asarray(predicted)
            self.dist = stats.t

    before = fingerprint(Prediction([1.0, 2.0]))
    np.random.normal(size=3)  # the global generator moves on
    stats.t.random_state  # noqa: B018 - scipy's distributions draw from it
    assert same_fingerprint(before, fingerprint(Prediction([1.0, 2.0])))
    assert not same_fingerprint(before, fingerprint(Prediction([1.0, 2.5])))
    other = Prediction([1.0, 2.0])
    other.dist = stats.norm  # another distribution is another value
    assert not same_fingerprint(before, fingerprint(other))
