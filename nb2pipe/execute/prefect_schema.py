"""The database of a new local Prefect server, built from the schema Prefect's migrations give.

A Prefect server creates its SQLite database by running every migration in its history (114
for Prefect 3.8) through aiosqlite: about 4.5 s of CPU, and some 34,000 hand-offs between two
threads, which a busy machine makes many times longer (over a minute with a load of 13 on two
cores). What the migrations leave is the same for every database of one Prefect version. So
nb2pipe keeps it, as the SQL that SQLite dumps from a database Prefect itself migrated
(prefect_schema.sql, with the Prefect version it came from on its first line), and builds a new
local server's database from it in milliseconds when the installed Prefect is that version.
Any other version migrates an empty database as before. The server still checks its database
when it starts (it is at the head revision: nothing to do) and registers its block types, as on
any first start.

    python -m nb2pipe.execute.prefect_schema   # prefect_schema.sql for the installed Prefect
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

SCHEMA = Path(__file__).with_name("prefect_schema.sql")
HEADER = "-- The database of a new Prefect server, as its migrations leave it: Prefect "

# What a Prefect server does to an empty database when it starts (its app's `run_migrations`).
_MIGRATE = """
import asyncio
from prefect.server.database import provide_database_interface
asyncio.run(provide_database_interface().create_db())
"""


def seed(database: Path, prefect: str) -> bool:
    """Create `database` from the schema when it was dumped from Prefect `prefect`; False
    (nothing written) otherwise: the server then migrates an empty database itself."""
    try:
        first, _, script = SCHEMA.read_text(encoding="utf-8").partition("\n")
    except OSError:
        return False
    if first != HEADER + prefect:
        return False
    staging = database.with_name(f".{database.name}.{os.getpid()}")
    try:
        staging.unlink(missing_ok=True)
        with contextlib.closing(sqlite3.connect(staging)) as connection:
            connection.executescript(script)
            connection.execute("PRAGMA journal_mode=WAL")  # as Prefect leaves it
        os.replace(staging, database)
    except (OSError, sqlite3.Error):
        with contextlib.suppress(OSError):
            staging.unlink()
        return False
    return True


def dump(database: Path) -> str:
    """The SQL that rebuilds `database` (SQLite's own dump: its schema, then its rows)."""
    with contextlib.closing(sqlite3.connect(database)) as connection:
        return "\n".join(connection.iterdump()) + "\n"


def migrate(home: Path) -> Path:
    """Prefect's migrations on an empty database in `home` (as its PREFECT_HOME), in a process
    of its own; the database."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    subprocess.run([sys.executable, "-c", _MIGRATE], check=True, capture_output=True,
                   env={**env, "PREFECT_HOME": str(home)})
    return home / "prefect.db"


def migrated(prefect: str) -> str:
    """The schema file's text for the installed Prefect (version `prefect`): an empty
    database migrated by Prefect, dumped. (The migrations that rebuild a table list its
    constraints in no fixed order: see `canonical`.)"""
    with tempfile.TemporaryDirectory(prefix="nb2pipe-prefect-schema-") as home:
        return f"{HEADER}{prefect}\n{dump(migrate(Path(home)))}"


def canonical(schema: str) -> list[tuple[list[str], list[str]]]:
    """A dump, compared as SQLite reads it: its statements in any order (a table's indexes
    come in the order the migrations happened to create them), each statement's lines in
    order except its table constraints (`CONSTRAINT name ...`), which Prefect's migrations
    list in no fixed order and which mean the same in any order."""
    found = []
    for statement in schema.split(";\n"):
        lines = statement.splitlines()
        constraints = [line for line in lines if line.strip().startswith("CONSTRAINT ")]
        found.append(([line.rstrip() for line in lines if line not in constraints],
                      sorted(line.strip().rstrip(",").rstrip() for line in constraints)))
    return sorted(found)


if __name__ == "__main__":
    from importlib.metadata import version

    SCHEMA.write_text(migrated(version("prefect")), encoding="utf-8")
    print(f"wrote {SCHEMA}")
