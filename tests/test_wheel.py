"""The built wheel carries the files nb2pipe reads besides its modules (the README template,
the Prefect schema), and nb2pipe installed from it converts a notebook as the source tree does."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from support import EXAMPLES

ROOT = Path(__file__).parent.parent
GOLDEN = Path(__file__).parent / "golden"
# Read at run time from beside their modules, so they must be package data of the wheel.
DATA_FILES = ("nb2pipe/generate/project_readme.md", "nb2pipe/execute/prefect_schema.sql",
              "nb2pipe/execute/prefect_blocks.sql")

CONVERT = """
import sys
from pathlib import Path
import nb2pipe
from nb2pipe.cli import main
# the installed copy, not the source tree that an editable install also puts on the path
assert Path(nb2pipe.__file__).is_relative_to(sys.argv[1]), nb2pipe.__file__
sys.exit(main(["convert", sys.argv[2], "-o", sys.argv[3]]))
"""


@pytest.mark.integration
def test_an_installed_wheel_converts_as_the_source_tree_does(tmp_path: Path) -> None:
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet",
                    "--wheel-dir", str(tmp_path / "dist"), str(ROOT)], check=True)
    (wheel,) = (tmp_path / "dist").glob("nb2pipe-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert set(DATA_FILES) <= names, sorted(set(DATA_FILES) - names)

    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--quiet",
                    "--target", str(site), str(wheel)], check=True)
    folder = tmp_path / "churn"
    shutil.copytree(EXAMPLES / "churn", folder, ignore=shutil.ignore_patterns("*_pipeline"))
    output = folder / "churn_pipeline"
    env = {**os.environ, "PYTHONPATH": str(site)}
    subprocess.run([sys.executable, "-c", CONVERT, str(site), str(folder / "churn.ipynb"),
                    str(output)], check=True, env=env, cwd=tmp_path)

    golden = sorted(p for p in (GOLDEN / "churn").rglob("*") if p.is_file())
    assert golden
    for path in golden:
        written = output / path.relative_to(GOLDEN / "churn")
        assert written.read_text(encoding="utf-8") == path.read_text(encoding="utf-8"), written
