"""The database of a new local Prefect server, built from the schema Prefect's migrations give.

A Prefect server creates its SQLite database by running every migration in its history (114
for Prefect 3.8) through aiosqlite: about 4.5 s of CPU, and some 34,000 hand-offs between two
threads, which a busy machine makes many times longer (over a minute with a load of 13 on two
cores). What the migrations leave is the same for every database of one Prefect version. So
nb2pipe keeps it, as the SQL that SQLite dumps from a database Prefect itself migrated
(prefect_schema.sql, with the Prefect version it came from on its first line), and builds a new
local server's database from it in milliseconds when the installed Prefect is that version.
Any other version migrates an empty database as before. The server still checks its database
when it starts (it is at the head revision: nothing to do).

On its first start a server then registers its block types: Prefect's own and those of the
catalogue of collections it ships, 54 types and 64 schemas written through its ORM, about 1.3 s
of CPU. With no collection imported at start-up (prefect_server.py), these rows too are the same
for every server of one Prefect version. So they are kept beside the schema, as the INSERT
statements SQLite dumps from a database a real server registered them in (prefect_blocks.sql,
with its Prefect version on its first line), and a database seeded with them is started with
registration off (`Seeded.blocks`). The server's memo of that registration is written as
usual, so a later start on the same database skips it as Prefect always does.

    python -m nb2pipe.execute.prefect_schema   # both files, for the installed Prefect
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

SCHEMA = Path(__file__).with_name("prefect_schema.sql")
HEADER = "-- The database of a new Prefect server, as its migrations leave it: Prefect "
BLOCKS = Path(__file__).with_name("prefect_blocks.sql")
BLOCKS_HEADER = "-- The block types a new Prefect server registers as it starts: Prefect "
BLOCK_TABLES = ("block_type", "block_schema", "block_schema_reference")
NOW = "strftime('%Y-%m-%d %H:%M:%f000', 'now')"  # as Prefect's columns default to

# What a Prefect server does to an empty database when it starts (its app's `run_migrations`).
_MIGRATE = """
import asyncio
from prefect.server.database import provide_database_interface
asyncio.run(provide_database_interface().create_db())
"""


@dataclass(frozen=True)
class Seeded:
    """What `seed` wrote: the schema (else nothing), and the block types with it."""

    schema: bool
    blocks: bool = False

    def __bool__(self) -> bool:
        return self.schema


def seed(database: Path, prefect: str, blocks: bool = True) -> Seeded:
    """Create `database` from the schema when it was dumped from Prefect `prefect`, with the
    registered block types when `blocks` and they were dumped from that version too. Nothing
    is written otherwise: the server then migrates an empty database itself."""
    script = _script(SCHEMA, HEADER + prefect)
    if script is None:
        return Seeded(False)
    inserts = _script(BLOCKS, BLOCKS_HEADER + prefect) if blocks else None
    staging = database.with_name(f".{database.name}.{os.getpid()}")
    try:
        staging.unlink(missing_ok=True)
        with contextlib.closing(sqlite3.connect(staging)) as connection:
            connection.executescript(script)
            if inserts is not None:
                connection.executescript(inserts)
                with connection:  # registered now, as far as anyone reading them can tell
                    for table in BLOCK_TABLES:
                        connection.execute(f"UPDATE {table} SET created = {NOW}, "
                                           f"updated = {NOW}")
            connection.execute("PRAGMA journal_mode=WAL")  # as Prefect leaves it
        os.replace(staging, database)
    except (OSError, sqlite3.Error):
        with contextlib.suppress(OSError):
            staging.unlink()
        return Seeded(False)
    return Seeded(True, inserts is not None)


def _script(path: Path, header: str) -> str | None:
    """The SQL of `path` when its first line is `header`."""
    try:
        first, _, script = path.read_text(encoding="utf-8").partition("\n")
    except OSError:
        return None
    return script if first == header else None


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


def block_inserts(database: Path) -> str:
    """The INSERT statements of the registered block types in `database`: table by table, a
    table before those that refer to it, each table's rows in a fixed order."""
    with contextlib.closing(sqlite3.connect(database)) as connection:
        statements = list(connection.iterdump())
    found = []
    for table in BLOCK_TABLES:
        found += sorted(s for s in statements if s.startswith(f'INSERT INTO "{table}" VALUES('))
    return "\n".join(found) + "\n"


def register(home: Path, seconds: float = 300.0) -> Path:
    """A local server (as nb2pipe starts one) on a database seeded with the schema alone, in
    `home`, until it answers: it has registered its block types then. The database."""
    from importlib.metadata import version

    from nb2pipe.execute.prefect_server import (
        HOST,
        answers,
        free_port,
        server_command,
        server_environment,
    )

    database = home / "prefect.db"
    if not seed(database, version("prefect"), blocks=False):
        migrate(home)
    port = free_port()
    url = f"http://{HOST}:{port}"
    process = subprocess.Popen(server_command(port), env=server_environment(home, url), cwd=home,
                               stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + seconds
        while not answers(f"{url}/api", timeout=2):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the Prefect server in {home} did not start")
            time.sleep(0.1)
    finally:
        process.terminate()
        process.wait()
    return database


def registered(prefect: str) -> str:
    """The block file's text for the installed Prefect (version `prefect`)."""
    with tempfile.TemporaryDirectory(prefix="nb2pipe-prefect-blocks-") as home:
        return f"{BLOCKS_HEADER}{prefect}\n{block_inserts(register(Path(home)))}"


if __name__ == "__main__":
    from importlib.metadata import version

    SCHEMA.write_text(migrated(version("prefect")), encoding="utf-8")
    print(f"wrote {SCHEMA}")
    BLOCKS.write_text(registered(version("prefect")), encoding="utf-8")
    print(f"wrote {BLOCKS}")
