"""Rebuild the notebook corpus from pinned commits of public repositories.

The corpus is a few hundred public notebooks (Kaggle kernels, data-science textbooks, pandas and
scikit-learn tutorials, Kale, Elyra and Ploomber examples) that `benchmarks/corpus.py` runs
`nb2pipe check`, `convert` and `verify` on. The notebooks are not part of this repository: this
script writes them, byte for byte as they are at the pinned commits, from local git mirrors of
their repositories into a folder that is not committed.

    python benchmarks/corpus_build.py                 # write benchmarks/.corpus/
    python benchmarks/corpus_build.py --out DIR       # or NB2PIPE_CORPUS=DIR
    python benchmarks/corpus_build.py --select        # re-pick the list from the mirrors' HEADs

Pinned lists (tab-separated, committed):
  corpus_notebooks.tsv   repo, commit, path, source   every notebook of the corpus
  corpus_executed.tsv    repo, commit, path, data, split, half   notebooks that run offline,
                         with the data files and folders they read (comma-separated), the split
                         that verify uses and the half they belong to: `tuning` or `held-out`
                         (by repository, see `--halves`), `earlier` (the tier's first 30
                         notebooks, from repositories the analysis was tuned on before), or
                         `fresh`, `fresh2` (later held-out sets, see `--fresh`)

    python benchmarks/corpus_build.py --halves        # recompute the half of every new row
    python benchmarks/corpus_build.py --executed-only --half tuning --half held-out
                                                      # only those rows of the executed tier

Each fresh half is chosen by rule from repositories no other list uses (its FRESH_SOURCES),
before any nb2pipe result on them is seen:

    python benchmarks/corpus_build.py --fresh fresh2  # candidate rows: imports the [corpus]
                                                      # extra installs, a seeded sample per repo
    python benchmarks/corpus_build.py --executed-only --half fresh2
    python benchmarks/corpus.py --execute --half fresh2 --papermill-only --jobs 1 --json S.json
    python benchmarks/corpus_build.py --keep-ran S.json   # keep the rows that ran in time

A mirror is a git directory holding the pinned commit, looked up as
$NB2PIPE_MIRRORS/<owner>+<name>/repo (default /work/.mirror), e.g. made with
`git clone --mirror https://github.com/<owner>/<name> <owner>+<name>/repo`.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import random
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
NOTEBOOKS_TSV = HERE / "corpus_notebooks.tsv"
EXECUTED_TSV = HERE / "corpus_executed.tsv"
DEFAULT_OUT = HERE / ".corpus"
DEFAULT_MIRRORS = Path("/work/.mirror")
SEED = 20261129
# Snapshots may leave out files this large; a notebook that big is no typical input either.
MAX_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class Source:
    """Where notebooks come from: a repository, which of its notebooks, how many at most."""

    repo: str
    kind: str
    include: str = r".*"
    cap: int = 10_000


SOURCES = [
    Source("adgirish/kaggleScape", "kaggle-kernels", r"^data/"),
    Source("Kaggle/learntools", "kaggle-learn", r"^notebooks/", 45),
    Source("jakevdp/PythonDataScienceHandbook", "textbook", r"^notebooks/", 67),
    Source("ageron/handson-ml2", "textbook"),
    Source("ageron/handson-ml3", "textbook"),
    Source("jakevdp/WhirlwindTourOfPython", "textbook"),
    Source("jrjohansson/scientific-python-lectures", "tutorial"),
    Source("rougier/numpy-100", "tutorial"),
    Source("amueller/introduction_to_ml_with_python", "textbook"),
    Source("wesm/pydata-book", "textbook"),
    Source("CamDavidsonPilon/Probabilistic-Programming-and-Bayesian-Methods-for-Hackers",
           "textbook", r"^Chapter", 20),
    Source("jvns/pandas-cookbook", "tutorial"),
    Source("guipsamora/pandas_exercises", "tutorial", r".*", 45),
    Source("justmarkham/scikit-learn-videos", "tutorial"),
    Source("justmarkham/pandas-videos", "tutorial"),
    Source("jakevdp/sklearn_tutorial", "tutorial"),
    Source("TomAugspurger/effective-pandas", "tutorial"),
    Source("donnemartin/data-science-ipython-notebooks", "tutorial",
           r"^(pandas|numpy|matplotlib|scikit-learn|scipy|python-data|analyses|kaggle|misc)/", 45),
    Source("kubeflow-kale/kale", "kale"),
    Source("elyra-ai/examples", "elyra"),
    Source("ploomber/projects", "ploomber"),
]


@dataclass(frozen=True)
class Entry:
    repo: str
    commit: str
    path: str
    extra: str  # the source kind (notebooks list) or the data paths (executed list)
    split: str = ""  # executed list: how cells become steps for verify (default cells)
    half: str = ""  # executed list: "tuning", "held-out", "earlier" or a fresh half

    @property
    def folder(self) -> str:
        return self.repo.replace("/", "+")

    def local(self, out: Path) -> Path:
        return out / self.folder / self.path

    @property
    def data(self) -> list[str]:
        return [p for p in self.extra.split(",") if p]


def corpus_dir(arg: str | None = None) -> Path:
    return Path(arg or os.environ.get("NB2PIPE_CORPUS") or DEFAULT_OUT)


def mirrors_dir() -> Path:
    return Path(os.environ.get("NB2PIPE_MIRRORS") or DEFAULT_MIRRORS)


def mirror(repo: str) -> Path:
    return mirrors_dir() / repo.replace("/", "+") / "repo"


def read_list(path: Path) -> list[Entry]:
    with path.open(newline="") as handle:
        rows = list(csv.reader(handle, delimiter="\t"))
    return [Entry(*row[:6]) for row in rows[1:] if row and not row[0].startswith("#")]


def write_list(path: Path, header: list[str], entries: list[Entry]) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle, delimiter="\t", lineterminator="\n")
        writer.writerow(header)
        for entry in entries:
            writer.writerow([entry.repo, entry.commit, entry.path, entry.extra])


EXECUTED_HEADER = ["repo", "commit", "path", "data", "split", "half"]
HALVES = ("tuning", "held-out")
EARLIER = "earlier"
FRESH = "fresh"
FRESH2 = "fresh2"


@dataclass(frozen=True)
class FreshSource:
    """A repository of a fresh half, pinned, and which of its notebooks are candidates."""

    repo: str
    commit: str
    include: str = r".*"


# Course and tutorial repositories with their data inside, none in any other list here, per
# fresh half: each half is a held-out set chosen after the one before had been measured.
FRESH_SOURCES = {FRESH: [
    FreshSource("jorisvandenbossche/pandas-tutorial", "8308a6eb7d144fff95a6853930e3be4e8ddb2e0f"),
    FreshSource("jorisvandenbossche/DS-python-data-analysis",
                "e1b5adad721f5febbff2c28d98b8b3e01d3b5d84", r"^notebooks/"),
    FreshSource("matplotlib/AnatomyOfMatplotlib", "e51eb6363371f1b271b235a63f859dbd984ff756"),
    FreshSource("ajcr/100-pandas-puzzles", "457b15f1efc127c6df5171bae34332838a9ffcb0"),
    FreshSource("justmarkham/pycon-2018-tutorial", "bf06a6d12a02baea17a4e31fce954cf691c74392"),
    FreshSource("rasbt/stat451-machine-learning-fs20", "51ae6db167ec9ccae555e973179c31be0d111804"),
    FreshSource("barbagroup/CFDPython", "92c8220070824e95402d83f193c4e496f4308dcb"),
    FreshSource("engineersCode/EngComp2_takeoff", "1a1ce69b6ac33adffe4b1cd08913c62eeb173cd1"),
    FreshSource("rasbt/python-machine-learning-book-3rd-edition",
                "bf62496f44a92a21d23250d5ed13d2d2e617e0e2"),
    FreshSource("numerical-mooc/numerical-mooc", "6a70f986729067dee9ca1fb26ba164b035fc971b"),
], FRESH2: [
    FreshSource("JWarmenhoven/ISLR-python", "4100e941914519eea18385daadc9b3dab99ca8e2"),
    FreshSource("gedeck/practical-statistics-for-data-scientists",
                "62bfedf0dd3b0905513e1639754626a6b625d64d", r"^python/notebooks/"),
    FreshSource("TomAugspurger/pandas-head-to-tail", "891a72ea5a21f8e0c8f6a6d22c03a1de26a6f30b"),
    FreshSource("mGalarnyk/Python_Tutorials", "d7b6219343a51caca93ca518716d59d7880bf6cf",
                r"^(Pandas|Python_Basics|Sklearn|Statistics|Visualization)/"),
    FreshSource("ehmatthes/intro_programming", "ea6cf69972cab8b80b6cc7689f42b42a6d86a587",
                r"^notebooks/"),
    FreshSource("tirthajyoti/Machine-Learning-with-Python",
                "ad23604344b55c759d0ffd24ac4c5695e9f79822"),
    FreshSource("tirthajyoti/Stats-Maths-with-Python", "1417888aca0cfadf3ca5a61dedc27d7c7dadd094"),
    FreshSource("mrdbourke/zero-to-mastery-ml", "81492352d12d7a52caef57bba7744cbdc34af33f"),
    FreshSource("PacktPublishing/Python-Data-Analysis-Third-Edition",
                "3a442cc8a2a3b5ece3df9f30c126f937d3fa5152"),
    FreshSource("JLDC/Data-Science-Fundamentals", "92c18c6eb62c5711c511c9d5bc3d01972c4ed2fc",
                r"^notebooks/"),
    FreshSource("OpenClassrooms-Student-Center/Design-Statistical-Models",
                "8ff96310265ad37696899d5b091fe7d0b46d6ba6"),
    FreshSource("Institute-of-Applied-Technology/IATD-Python-Data",
                "99779707980ef68960de031eb29cb2a342e0a722"),
]}
FRESH_HALVES = tuple(FRESH_SOURCES)
# The halves --halves leaves as they are.
FIXED_HALVES = (EARLIER, *FRESH_HALVES)
# At most this many candidates per repository (a seeded sample): no repository dominates.
FRESH_CAP = 10
# What the [corpus] extra installs, as top-level import names (the standard library aside).
CORPUS_MODULES = frozenset({
    "numpy", "pandas", "matplotlib", "mpl_toolkits", "pylab", "sklearn", "scipy",
    "statsmodels", "patsy", "seaborn", "pyarrow", "openpyxl", "IPython",
})
# A candidate is kept when papermill runs it offline within this many seconds.
FRESH_SECONDS = 150.0


def write_executed(path: Path, entries: list[Entry]) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle, delimiter="\t", lineterminator="\n")
        writer.writerow(EXECUTED_HEADER)
        for e in entries:
            writer.writerow([e.repo, e.commit, e.path, e.extra, e.split, e.half])


def halves(entries: list[Entry]) -> dict[str, str]:
    """Each repository's half: the largest repositories first (ties in a seeded order), each to
    the half with fewer notebooks so far. A repository lies wholly in one half, so what is
    learnt from a tuning notebook cannot leak through a sibling notebook in the held-out half;
    the order depends on the list alone, never on results."""
    counts: dict[str, int] = {}
    for e in entries:
        counts[e.repo] = counts.get(e.repo, 0) + 1

    def seeded(repo: str) -> str:
        return hashlib.sha256(f"{SEED}:{repo}".encode()).hexdigest()

    sizes = dict.fromkeys(HALVES, 0)
    found: dict[str, str] = {}
    for repo in sorted(counts, key=lambda r: (-counts[r], seeded(r))):
        half = min(HALVES, key=lambda h: (sizes[h], HALVES.index(h)))
        found[repo] = half
        sizes[half] += counts[repo]
    return found


def assign_halves(entries: list[Entry]) -> list[Entry]:
    """The rows with their half recomputed; rows of the earlier and fresh halves keep theirs."""
    split = [e for e in entries if e.half not in FIXED_HALVES]
    by_repo = halves(split)
    return [e if e.half in FIXED_HALVES else Entry(e.repo, e.commit, e.path, e.extra,
                                                   e.split or "cells", by_repo[e.repo])
            for e in entries]


def git(repo: str, *args: str) -> str:
    return subprocess.run(["git", "-C", str(mirror(repo)), *args], check=True,
                          capture_output=True, text=True).stdout


def has_commit(repo: str, commit: str) -> bool:
    if not mirror(repo).is_dir():
        return False
    done = subprocess.run(["git", "-C", str(mirror(repo)), "cat-file", "-e",
                           f"{commit}^{{commit}}"], capture_output=True)
    return done.returncode == 0


def missing_mirrors(entries: list[Entry]) -> list[tuple[str, str]]:
    pinned = sorted({(e.repo, e.commit) for e in entries})
    return [(repo, commit) for repo, commit in pinned if not has_commit(repo, commit)]


def select() -> list[Entry]:
    """Pick the corpus from each source's current HEAD: every notebook, or a seeded sample."""
    entries: list[Entry] = []
    for source in SOURCES:
        if not mirror(source.repo).is_dir():
            sys.exit(f"no mirror of {source.repo} at {mirror(source.repo)}: "
                     f"fetch github:{source.repo} first")
        commit = git(source.repo, "rev-parse", "HEAD").strip()
        listing = git(source.repo, "ls-tree", "-r", "-l", "-z", commit)
        paths = []
        for line in listing.split("\0"):
            if not line:
                continue
            meta, path = line.split("\t", 1)
            size = meta.split()[3]
            if (path.endswith(".ipynb") and ".ipynb_checkpoints" not in path
                    and re.search(source.include, path) and size.isdigit()
                    and int(size) < MAX_BYTES):
                paths.append(path)
        paths.sort()
        if len(paths) > source.cap:
            paths = sorted(random.Random(f"{SEED}:{source.repo}").sample(paths, source.cap))
        entries += [Entry(source.repo, commit, path, source.kind) for path in paths]
    return entries


def code_of(notebook: bytes) -> str:
    """The code cells of a notebook, joined; "" when it is not a readable notebook."""
    try:
        cells = json.loads(notebook).get("cells", [])
    except (ValueError, AttributeError):
        return ""
    return "\n".join("".join(c.get("source") or "") if isinstance(c.get("source"), list)
                     else str(c.get("source") or "")
                     for c in cells if isinstance(c, dict) and c.get("cell_type") == "code")


def imported(code: str) -> set[str]:
    return set(re.findall(r"^[ \t]*(?:from|import)[ \t]+([A-Za-z_]\w*)", code, re.M))


def fresh_candidates(source: FreshSource, half: str = FRESH) -> list[Entry]:
    """The source's candidate rows, in `half`: every notebook whose imports are the standard
    library, what the [corpus] extra installs or a module beside it in the repository, with the
    data files its code names (by file name, present in the mirror); a seeded sample of
    FRESH_CAP of them when there are more. Nothing here runs a notebook or nb2pipe."""
    listing = git(source.repo, "ls-tree", "-r", "-l", "-z", source.commit)
    sizes: dict[str, int] = {}
    for line in listing.split("\0"):
        if line:
            meta, path = line.split("\t", 1)
            size = meta.split()[3]
            if size.isdigit():  # "-" for a blob the snapshot left out
                sizes[path] = int(size)
    known = set(sys.stdlib_module_names) | CORPUS_MODULES
    rows = []
    for path in sorted(sizes):
        if (not path.endswith(".ipynb") or ".ipynb_checkpoints" in path
                or not re.search(source.include, path) or sizes[path] >= MAX_BYTES):
            continue
        folder = path.rpartition("/")[0]
        code = code_of(git_bytes(source.repo, "show", f"{source.commit}:{path}"))
        if not code:
            continue
        beside = {p for p in sizes if p.rpartition("/")[0] == folder and p.endswith(".py")}
        local = {p.rpartition("/")[2][:-3]: p for p in beside}
        modules = imported(code)
        if modules - known - set(local):
            continue
        # A file named in the code (read_csv, np.load, %load, %run) is data, a script too.
        data = sorted({local[m] for m in modules if m in local} | {
            p for p in sizes if not p.endswith(".ipynb") and sizes[p] < MAX_BYTES
            and len(p.rpartition("/")[2]) > 4 and p.rpartition("/")[2] in code})
        rows.append(Entry(source.repo, source.commit, path, ",".join(data), "cells", half))
    if len(rows) > FRESH_CAP:
        rows = sorted(random.Random(f"{SEED}:{source.repo}").sample(rows, FRESH_CAP),
                      key=lambda e: e.path)
    return rows


def keep_ran(entries: list[Entry], screening: list[dict[str, object]]) -> list[Entry]:
    """The rows of each fresh half the screening run covers that ran under papermill (offline)
    within FRESH_SECONDS; every other row as it is, the rows of a fresh half it did not screen
    too. Only the papermill result is read."""
    screened = {str(r["notebook"]) for r in screening}
    halves = {e.half for e in entries
              if e.half in FRESH_HALVES and f"{e.repo}/{e.path}" in screened}
    ran = {str(r["notebook"]) for r in screening if r.get("papermill") == "ok"
           and float(str(r.get("papermill_seconds") or 0)) <= FRESH_SECONDS}
    return [e for e in entries if e.half not in halves or f"{e.repo}/{e.path}" in ran]


def git_bytes(repo: str, *args: str) -> bytes:
    return subprocess.run(["git", "-C", str(mirror(repo)), *args], check=True,
                          capture_output=True).stdout


def blob_paths(entry: Entry, with_data: bool) -> list[str]:
    """The notebook and, for the executed list, every file under its data paths."""
    paths = [entry.path]
    for data in entry.data if with_data else []:
        listing = git(entry.repo, "ls-tree", "-r", "--name-only", "-z", entry.commit, "--", data)
        found = [p for p in listing.split("\0") if p]
        if not found:
            sys.exit(f"{entry.repo}@{entry.commit[:10]}: no file at {data!r}")
        paths += found
    return paths


def build(out: Path, notebooks: list[Entry], executed: list[Entry]) -> int:
    entries = notebooks + executed
    missing = missing_mirrors(entries)
    if missing:
        lines = [f"  fetch github:{repo}  (needs commit {commit}; expected at {mirror(repo)})"
                 for repo, commit in missing]
        sys.exit("missing mirrors: the corpus cannot be built until these repositories are "
                 "fetched (NB2PIPE_MIRRORS points at the folder holding <owner>+<name>/repo):\n"
                 + "\n".join(lines))
    written = 0
    by_repo: dict[tuple[str, str], list[str]] = {}
    for entry in entries:
        paths = blob_paths(entry, with_data=entry in executed)
        by_repo.setdefault((entry.repo, entry.commit), []).extend(paths)
    for (repo, commit), paths in sorted(by_repo.items()):
        unique = sorted(set(paths))
        batch = "".join(f"{commit}:{p}\n" for p in unique).encode()
        done = subprocess.run(["git", "-C", str(mirror(repo)), "cat-file", "--batch"],
                              input=batch, capture_output=True, check=True)
        stream = done.stdout
        pos = 0
        for path in unique:
            end = stream.index(b"\n", pos)
            header = stream[pos:end].decode().split()
            if header[-1] == "missing":
                sys.exit(f"{repo}@{commit[:10]}: {path} is not in the mirror (a large file "
                         "left out of the snapshot?)")
            size = int(header[2])
            body = stream[end + 1:end + 1 + size]
            pos = end + 1 + size + 1
            target = out / repo.replace("/", "+") / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(body)
            written += 1
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", help=f"corpus folder (default $NB2PIPE_CORPUS or {DEFAULT_OUT})")
    parser.add_argument("--select", action="store_true",
                        help=f"re-pick {NOTEBOOKS_TSV.name} from the mirrors' current HEADs")
    parser.add_argument("--clean", action="store_true", help="empty the corpus folder first")
    parser.add_argument("--halves", action="store_true",
                        help=f"recompute the half of every row of {EXECUTED_TSV.name} (by "
                        "repository) and write it back")
    parser.add_argument("--executed-only", action="store_true",
                        help=f"write only the notebooks of {EXECUTED_TSV.name}")
    parser.add_argument("--fresh", nargs="?", const=FRESH, choices=FRESH_HALVES,
                        metavar="HALF",
                        help=f"replace the rows of this fresh half (default {FRESH}) of "
                        f"{EXECUTED_TSV.name} by the candidates of its FRESH_SOURCES (screen "
                        "them with papermill next)")
    parser.add_argument("--keep-ran", metavar="FILE",
                        help="keep the rows of the fresh halves a screening run covers that ran "
                        f"under papermill within {FRESH_SECONDS:.0f} s (its --json file)")
    parser.add_argument("--half", action="append", choices=(*HALVES, *FIXED_HALVES),
                        help="with --executed-only: only rows of this half (repeatable)")
    args = parser.parse_args(argv)
    if args.halves:
        entries = assign_halves(read_list(EXECUTED_TSV))
        write_executed(EXECUTED_TSV, entries)
        for half in (*HALVES, *FIXED_HALVES):
            mine = [e for e in entries if e.half == half]
            print(f"{half}: {len(mine)} notebooks from {len({e.repo for e in mine})} "
                  "repositories")
    if args.fresh:
        rows = [e for e in read_list(EXECUTED_TSV) if e.half != args.fresh]
        candidates = [e for source in FRESH_SOURCES[args.fresh]
                      for e in fresh_candidates(source, args.fresh)]
        write_executed(EXECUTED_TSV, rows + candidates)
        print(f"{args.fresh}: {len(candidates)} candidates from "
              f"{len({e.repo for e in candidates})} repositories")
    if args.keep_ran:
        screening = json.loads(Path(args.keep_ran).read_text())["records"]
        before = read_list(EXECUTED_TSV)
        entries = keep_ran(before, screening)
        write_executed(EXECUTED_TSV, entries)
        for half in FRESH_HALVES:
            mine = [e for e in entries if e.half == half]
            if len(mine) < sum(e.half == half for e in before):
                print(f"{half}: {len(mine)} notebooks from {len({e.repo for e in mine})} "
                      f"repositories ran within {FRESH_SECONDS:.0f} s")
    if args.select:
        entries = select()
        write_list(NOTEBOOKS_TSV, ["repo", "commit", "path", "source"], entries)
        print(f"{NOTEBOOKS_TSV.name}: {len(entries)} notebooks")
    out = corpus_dir(args.out)
    if args.clean and out.exists():
        shutil.rmtree(out)
    notebooks = [] if args.executed_only else read_list(NOTEBOOKS_TSV)
    executed = read_list(EXECUTED_TSV) if EXECUTED_TSV.exists() else []
    if args.half:
        executed = [e for e in executed if e.half in args.half]
    written = build(out, notebooks, executed)
    kinds: dict[str, int] = {}
    for entry in notebooks:
        kinds[entry.extra] = kinds.get(entry.extra, 0) + 1
    summary = ", ".join(f"{kind} {n}" for kind, n in sorted(kinds.items()))
    print(f"{out}: {len(notebooks)} notebooks from {len({e.repo for e in notebooks})} "
          f"repositories ({summary}); {len(executed)} in the executed tier from "
          f"{len({e.repo for e in executed})} repositories; {written} files")
    return 0


if __name__ == "__main__":
    sys.exit(main())
