"""The executed corpus tier's bookkeeping: the split into halves and the figures per half."""

from __future__ import annotations

import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import corpus_build  # noqa: E402
import corpus_execute  # noqa: E402
from corpus_build import Entry  # noqa: E402


def _entries(sizes: dict[str, int], half: str = "") -> list[Entry]:
    return [Entry(repo, "0" * 40, f"nb{n}.ipynb", "", "cells", half)
            for repo, count in sizes.items() for n in range(count)]


def test_halves_keep_each_repository_whole_and_balance_the_notebooks() -> None:
    sizes = {"a/one": 9, "b/two": 7, "c/three": 5, "d/four": 4, "e/five": 3, "f/six": 2}
    found = corpus_build.halves(_entries(sizes))
    assert set(found) == set(sizes)
    totals = {h: sum(sizes[r] for r, half in found.items() if half == h)
              for h in corpus_build.HALVES}
    assert abs(totals["tuning"] - totals["held-out"]) <= 2, totals
    # The same list gives the same split, whatever order its rows are in.
    shuffled = list(reversed(_entries(sizes)))
    assert corpus_build.halves(shuffled) == found


def test_rows_of_the_earlier_tier_keep_their_half() -> None:
    rows = _entries({"old/repo": 3}, "earlier") + _entries({"a/one": 2, "b/two": 2})
    assigned = corpus_build.assign_halves(rows)
    assert [e.half for e in assigned[:3]] == ["earlier"] * 3
    assert {e.half for e in assigned[3:]} == {"tuning", "held-out"}


def test_read_list_reads_the_half_column(tmp_path: Path) -> None:
    rows = _entries({"a/one": 1}, "held-out")
    path = tmp_path / "executed.tsv"
    corpus_build.write_executed(path, rows)
    assert corpus_build.read_list(path) == rows


def _record(half: str, papermill: str, check: str, verify: str) -> corpus_execute.Executed:
    return corpus_execute.Executed(f"r/{half}-{check}-{verify}", "r", half, "cells",
                                   papermill=papermill, check=check, verify=verify)


def test_figures_leave_out_papermill_failures_and_count_green_checks_that_fail() -> None:
    records = [
        _record("tuning", "ok", "clean", "pass"),
        _record("tuning", "ok", "warnings", "diverges"),  # green, computes another value
        _record("tuning", "ok", "clean", "fails"),  # green, a step fails
        _record("tuning", "ok", "errors", "refused"),  # check said no: not green
        _record("tuning", "SyntaxError: print", "", ""),  # does not run at all: left out
    ]
    s = corpus_execute.summarize(records)
    assert s["notebooks"] == 5
    assert s["papermill_fails"] == 1
    assert s["counted"] == 4
    assert s["passed"] == 1
    assert s["green_but_fails"] == 2
    assert s["check"] == {"clean": 2, "warnings": 1, "errors": 1, "crash": 0}
    assert s["verify"]["refused"] == 1


def test_halves_leave_the_fresh_rows_as_they_are() -> None:
    rows = _entries({"new/repo": 3}, "fresh") + _entries({"a/one": 2, "b/two": 2})
    assigned = corpus_build.assign_halves(rows)
    assert [e.half for e in assigned[:3]] == ["fresh"] * 3
    assert {e.half for e in assigned[3:]} == {"tuning", "held-out"}


def test_figures_are_given_for_the_fresh_half(capsys: object) -> None:
    records = [_record("fresh", "ok", "clean", "pass"), _record("tuning", "ok", "clean", "pass")]
    corpus_execute.report(records)
    header = capsys.readouterr().out.splitlines()[0]  # type: ignore[attr-defined]
    assert header.split() == ["tuning", "fresh"]


def _git(repo: Path, *args: str) -> str:
    import subprocess

    done = subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True,
                          text=True, env={"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t",
                                          "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t",
                                          "HOME": str(repo)})
    return done.stdout


def _notebook(*cells: str) -> str:
    import json

    return json.dumps({"cells": [{"cell_type": "code", "source": c} for c in cells],
                       "metadata": {}, "nbformat": 4, "nbformat_minor": 5})


def test_fresh_candidates_keep_notebooks_whose_imports_are_installed_with_their_data(
        tmp_path: Path, monkeypatch: object) -> None:
    work = tmp_path / "owner+name" / "repo"
    files = {
        "ok.ipynb": _notebook("import pandas as pd\nimport os", "df = pd.read_csv('data/a.csv')",
                              "%load exercises/ex1.py"),
        "local.ipynb": _notebook("from helpers import f", "f()"),
        "torch.ipynb": _notebook("import numpy\nimport torch"),
        "other/skip.ipynb": _notebook("import numpy"),
        "data/a.csv": "x\n1\n",
        "data/unused.csv": "y\n2\n",
        "helpers.py": "def f():\n    return 1\n",
        "exercises/ex1.py": "x = 1\n",
    }
    for rel, text in files.items():
        (work / rel).parent.mkdir(parents=True, exist_ok=True)
        (work / rel).write_text(text)
    _git(work, "init", "-q")
    _git(work, "add", "-A")
    _git(work, "commit", "-q", "-m", "x")
    commit = _git(work, "rev-parse", "HEAD").strip()
    monkeypatch.setenv("NB2PIPE_MIRRORS", str(tmp_path))  # type: ignore[attr-defined]
    source = corpus_build.FreshSource("owner/name", commit, r"^[^/]+\.ipynb$")
    found = corpus_build.fresh_candidates(source)
    assert [(e.path, e.data, e.split, e.half) for e in found] == [
        ("local.ipynb", ["helpers.py"], "cells", "fresh"),
        ("ok.ipynb", ["data/a.csv", "exercises/ex1.py"], "cells", "fresh"),
    ]


def test_keep_ran_drops_fresh_rows_that_failed_or_ran_too_long() -> None:
    rows = _entries({"new/repo": 3}, "fresh") + _entries({"a/one": 1}, "tuning")
    limit = corpus_build.FRESH_SECONDS
    screening: list[dict[str, object]] = [
        {"notebook": "new/repo/nb0.ipynb", "papermill": "ok", "papermill_seconds": 10.0},
        {"notebook": "new/repo/nb1.ipynb", "papermill": "NameError: x", "papermill_seconds": 5.0},
        {"notebook": "new/repo/nb2.ipynb", "papermill": "ok", "papermill_seconds": limit + 1},
    ]
    kept = corpus_build.keep_ran(rows, screening)
    assert [(e.repo, e.path) for e in kept] == [("new/repo", "nb0.ipynb"), ("a/one", "nb0.ipynb")]


def test_keep_ran_leaves_a_fresh_half_it_did_not_screen_as_it_is() -> None:
    rows = _entries({"old/repo": 2}, "fresh") + _entries({"new/repo": 2}, "fresh2")
    screening: list[dict[str, object]] = [
        {"notebook": "new/repo/nb0.ipynb", "papermill": "ok", "papermill_seconds": 10.0},
        {"notebook": "new/repo/nb1.ipynb", "papermill": "NameError: x", "papermill_seconds": 5.0},
    ]
    kept = corpus_build.keep_ran(rows, screening)
    assert [(e.repo, e.path, e.half) for e in kept] == [
        ("old/repo", "nb0.ipynb", "fresh"), ("old/repo", "nb1.ipynb", "fresh"),
        ("new/repo", "nb0.ipynb", "fresh2")]


def test_each_fresh_half_is_a_half_of_its_own() -> None:
    rows = _entries({"new/repo": 2}, "fresh2") + _entries({"a/one": 2, "b/two": 2})
    assert [e.half for e in corpus_build.assign_halves(rows)[:2]] == ["fresh2"] * 2
    assert corpus_build.FRESH2 in corpus_execute.GROUPS
    assert corpus_build.FRESH2 in corpus_build.FIXED_HALVES


def test_values_differing_only_in_method_state_are_their_own_outcome() -> None:
    from nb2pipe import cli

    assert corpus_execute.ONLY_METHOD_STATE == cli.ONLY_METHOD_STATE
    out = ("  method state: 'res' (use inputs) differs only in attributes its class's methods "
           "store, not from the rest of it alone: res._results.data.predict_end (other values)\n")
    err = f"nb2pipe: n.ipynb: 1 values {cli.ONLY_METHOD_STATE} (named above: ...)\n"
    found = corpus_execute.outcome(1, False, 60, out, err)
    assert found[0] == "method state" and "res._results.data.predict_end" in found[1]
    assert corpus_execute.outcome(1, False, 60, out, "nb2pipe: first divergence: x")[0] == (
        "diverges")
