"""The local Prefect server `nb2pipe run` starts on first use and reuses: real processes, a
cache folder of each test's own, and whatever a test starts stopped after it."""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support import as_from_a_terminal, write_notebook

from nb2pipe.execute import local_server, prefect_api, prefect_schema

STARTING = "starting local Prefect server…"


# --- helpers ------------------------------------------------------------------------------

@pytest.fixture
def cache(tmp_path: Path) -> Iterator[Path]:
    """A cache folder of the test's own; the server a test starts there is stopped after it,
    and nothing may be left running."""
    folder = tmp_path / "cache"
    yield folder
    local_server.stop(root=folder)
    assert servers_in(folder / "server") == []


def environment(cache: Path, **extra: str) -> dict[str, str]:
    env = {**os.environ, "NB2PIPE_CACHE_DIR": str(cache), **extra}
    if "PREFECT_API_URL" not in extra:
        env.pop("PREFECT_API_URL", None)  # the session's server: not for these tests
    return env


def nb2pipe(*args: str, cache: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "nb2pipe", *args], capture_output=True,
                          text=True, env=environment(cache, **extra), timeout=600)


def servers_in(folder: Path) -> list[int]:
    """Pids of the processes working in `folder` (a server's working directory is its state
    folder), read from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if Path(os.readlink(entry / "cwd")) == folder:
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def group_members(pgid: int) -> list[int]:
    listed = subprocess.run(["ps", "-eo", "pid=,pgid=,stat="], capture_output=True, text=True,
                            check=True).stdout
    return [int(pid) for pid, group, stat in (line.split()[:3] for line in listed.splitlines())
            if int(group) == pgid and not stat.startswith("Z")]


def record(cache: Path) -> local_server.Server:
    found = local_server.status(root=cache).server
    assert found is not None
    return found


def flow_run_state(url: str) -> str:
    """The state of the flow run whose UI page is `url`, asked of its server's API."""
    base, run_id = url.split("/runs/flow-run/")
    with urllib.request.urlopen(f"{base}/api/flow_runs/{run_id}", timeout=30) as reply:
        return str(json.loads(reply.read())["state_type"])


def printed(code: str) -> list[str]:
    """The lines a new Python process running `code` prints."""
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True).stdout.splitlines()


def two_steps(folder: Path, name: str = "two") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return write_notebook(folder / f"{name}.ipynb", ("x = 2", "step:make"),
                          ("y = x * 3", "step:use", "metrics"))


# --- fast: no server --------------------------------------------------------------------------

def test_the_reason_a_server_stopped_is_its_last_exception() -> None:
    log = ("INFO: started\nTraceback (most recent call last):\n  File x\n"
           "sqlalchemy.exc.OperationalError: (sqlite3.OperationalError) unable to open\n\n"
           "ERROR:    Application startup failed. Exiting.\nServer stopped!\n")
    assert local_server._reason(log) == ("sqlalchemy.exc.OperationalError: "
                                         "(sqlite3.OperationalError) unable to open")
    assert local_server._reason("a\nlast words\n") == "last words"
    assert local_server._reason("") == "no output"


def test_no_record_or_a_dead_pid_is_not_running(tmp_path: Path) -> None:
    assert local_server.status(root=tmp_path).state == "not running"
    folder = local_server.state_folder(tmp_path)
    folder.mkdir()
    (folder / "server.json").write_text("{not json")
    assert local_server.status(root=tmp_path).state == "not running"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    local_server._write_record(folder, local_server.Server(dead.pid, 1, "3", "python", 0.0))
    assert local_server.status(root=tmp_path).state == "not running"
    assert local_server.stop(root=tmp_path) is None
    assert not (folder / "server.json").exists()


def test_a_new_database_is_built_from_the_schema_only_for_its_prefect_version(
        tmp_path: Path) -> None:
    database = tmp_path / "prefect.db"
    assert not prefect_schema.seed(database, "3.0.0")  # another version migrates as before
    assert not database.exists()
    assert prefect_schema.seed(database, local_server.prefect_version())
    connection = sqlite3.connect(database)
    try:
        head = connection.execute("SELECT version_num FROM alembic_version").fetchall()
        tables = connection.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table'")
        assert len(head) == 1 and tables.fetchone()[0] > 30
        assert connection.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    finally:
        connection.close()
    assert [p.name for p in tmp_path.iterdir()] == ["prefect.db"]  # nothing half-written


def test_a_new_database_holds_the_registered_block_types_of_its_prefect_version(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The block types a first start registers come with the schema, dated when seeded;
    without them (another Prefect version's file) the schema alone is seeded and the server
    registers them itself."""
    version = local_server.prefect_version()
    seeded = prefect_schema.seed(tmp_path / "blocks.db", version)
    assert seeded.schema and seeded.blocks
    connection = sqlite3.connect(tmp_path / "blocks.db")
    try:
        counts = [connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
                  for table in prefect_schema.BLOCK_TABLES]
        slugs = {row[0] for row in connection.execute("SELECT slug FROM block_type")}
        dates = {row[0][:10] for table in prefect_schema.BLOCK_TABLES
                 for row in connection.execute(f"SELECT created FROM {table}")}
        orphans = connection.execute(
            "SELECT count(*) FROM block_schema WHERE block_type_id NOT IN "
            "(SELECT id FROM block_type)").fetchone()[0]
    finally:
        connection.close()
    assert all(counts) and {"s3-bucket", "secret", "local-file-system"} <= slugs
    assert orphans == 0
    today = {time.strftime("%Y-%m-%d", time.gmtime(moment)) for moment in
             (time.time() - 60, time.time())}
    assert dates <= today
    assert prefect_schema.seed(tmp_path / "schema.db", version, blocks=False) == \
        prefect_schema.Seeded(True, False)
    other = tmp_path / "other.sql"
    other.write_text(prefect_schema.BLOCKS_HEADER + "3.0.0\nINSERT INTO nothing VALUES(1);\n")
    monkeypatch.setattr(prefect_schema, "BLOCKS", other)
    assert prefect_schema.seed(tmp_path / "other.db", version) == prefect_schema.Seeded(True)


def test_a_server_on_a_database_seeded_with_block_types_does_not_register_them_again(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The first start, on a database seeded with the block types, runs with registration
    off; a later start on that database is left to Prefect's memo of it, as any start is."""
    started: list[dict[str, str]] = []

    class Started:
        pid = os.getpid()

        def __init__(self, command: list[str], env: dict[str, str], **kwargs: Any) -> None:
            started.append(env)

    monkeypatch.setattr(local_server.subprocess, "Popen", Started)
    monkeypatch.setattr(local_server, "_children", [])
    for _start in range(2):
        local_server._spawn(tmp_path, time.time())
    first, later = (env.get("PREFECT_API_BLOCKS_REGISTER_ON_START") for env in started)
    assert (first, later) == ("false", None)
    assert (tmp_path / "home" / "prefect.db").exists()


def test_the_server_process_is_prefects_command_without_the_iri_grammar() -> None:
    """The server's process runs `prefect server start` (its --help here) with jsonschema's
    IRI formats left out, as where rfc3987-syntax is not installed; other formats stay."""
    code = ("from nb2pipe.execute import prefect_server\n"
            "try:\n    prefect_server.main(['--help'])\nexcept SystemExit:\n    pass\n"
            "import jsonschema\n"
            "print(sorted(set(jsonschema.FormatChecker.checkers) & {'iri', 'uri'}))")
    server = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert "--port" in server.stdout and "Start a Prefect server" in server.stdout
    assert server.stdout.splitlines()[-1] == "['uri']"
    plain = subprocess.run([sys.executable, "-c", "import jsonschema, rfc3987_syntax\n"
                            "print('iri' in jsonschema.FormatChecker.checkers)"],
                           capture_output=True, text=True, check=False)
    assert plain.stdout.strip() in ("True", "")  # "": rfc3987-syntax is not installed here


def test_a_flow_process_imports_prefect_without_the_iri_grammar() -> None:
    """A flow's process imports Prefect with jsonschema's IRI formats left out, as the server
    does; the steps' own code can still import the package afterwards."""
    code = ("import sys\n"
            "from nb2pipe.execute import startup\n"
            "startup.import_prefect()\n"
            "import jsonschema\n"
            "print('prefect.flow_engine' in sys.modules, 'rfc3987_syntax' in sys.modules)\n"
            "print(sorted(set(jsonschema.FormatChecker.checkers) & {'iri', 'uri'}))\n"
            "try:\n    import rfc3987_syntax\nexcept ModuleNotFoundError:\n    pass\n"
            "print(sys.modules.get('rfc3987_syntax', 'missing') is not None)\n")
    assert printed(code) == ["True False", "['uri']", "True"]


def test_the_server_process_imports_no_collection_until_a_block_class_is_needed() -> None:
    """The server's start-up hashes the installed collections' block classes (importing
    prefect-aws, prefect-dask) before it registers block types: left out, it gets none; a
    lookup of a block class still imports the collection that defines it."""
    code = ("import sys\n"
            "from nb2pipe.execute import prefect_server\n"
            "prefect_server._collections_left_out()\n"
            "import prefect.plugins\n"
            "from prefect.blocks.core import Block\n"
            "start_up = {'__name__': prefect_server.START_UP, 'plugins': prefect.plugins}\n"
            "print(eval('plugins.load_prefect_collections()', start_up))\n"
            "print(sorted({'prefect_aws', 'prefect_dask', 'boto3'} & set(sys.modules)))\n"
            "print(Block.get_block_class_from_key('s3-bucket').__module__)\n")
    assert printed(code) == ["{}", "[]", "prefect_aws.s3"]


def test_a_refused_run_or_verify_starts_no_server(tmp_path: Path) -> None:
    """A bad parameter or a notebook with errors stops the command before anything starts."""
    cache = tmp_path / "cache"
    notebook = two_steps(tmp_path / "nb")
    broken = write_notebook(tmp_path / "nb" / "broken.ipynb", ("y = missing", "step:use"))
    for command, code in ((["run", str(notebook), "-p", "nope", "1"], 2),
                          (["verify", str(notebook), "-p", "nope", "1"], 2),
                          (["run", str(broken)], 1), (["verify", str(broken)], 1)):
        refused = nb2pipe(*command, cache=cache)
        assert refused.returncode == code, (command, refused.stdout, refused.stderr)
        assert not (cache / "server").exists(), command


def test_prefect_api_url_in_the_environment_is_the_configured_server(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PREFECT_API_URL", "http://10.0.0.5:4200/api")
    assert prefect_api.configured_api_url() == "http://10.0.0.5:4200/api"
    monkeypatch.delenv("PREFECT_API_URL")
    assert prefect_api.configured_api_url() is None  # PREFECT_HOME: the tests' own, empty


# --- real servers -----------------------------------------------------------------------------

@pytest.mark.integration
def test_the_schema_is_the_database_prefects_migrations_leave(tmp_path: Path) -> None:
    """prefect_schema.sql is what the installed Prefect's own migrations make of an empty
    database (after a Prefect upgrade: python -m nb2pipe.execute.prefect_schema), and a
    database built from it is that database again: the same schema, rows and settings."""
    version = local_server.prefect_version()
    migrated = prefect_schema.migrate(tmp_path)
    text = f"{prefect_schema.HEADER}{version}\n{prefect_schema.dump(migrated)}"
    shipped = prefect_schema.SCHEMA.read_text(encoding="utf-8")
    assert shipped.splitlines()[0] == prefect_schema.HEADER + version
    assert prefect_schema.canonical(shipped) == prefect_schema.canonical(text), (
        "prefect_schema.sql is stale: python -m nb2pipe.execute.prefect_schema")
    seeded = tmp_path / "seeded.db"
    assert prefect_schema.seed(seeded, version, blocks=False)
    assert f"{prefect_schema.HEADER}{version}\n{prefect_schema.dump(seeded)}" == shipped
    settings = ("user_version", "application_id", "journal_mode", "page_size", "auto_vacuum",
                "encoding")
    found = []
    for database in (seeded, migrated):
        connection = sqlite3.connect(database)
        try:
            found.append([connection.execute(f"PRAGMA {name}").fetchone() for name in settings])
        finally:
            connection.close()
    assert found[0] == found[1]


def _block_rows(database: Path) -> dict[str, list[tuple[Any, ...]]]:
    """The registered block types of a database as rows without their ids and dates (a
    block type named by its slug, a schema by its checksum), sorted; a schema's capabilities
    in any order."""
    connection = sqlite3.connect(database)
    try:
        types = dict(connection.execute("SELECT id, slug FROM block_type"))
        schemas = dict(connection.execute("SELECT id, checksum FROM block_schema"))
        names = {"block_type_id": types, "block_schema_id": schemas,
                 "parent_block_schema_id": schemas, "reference_block_schema_id": schemas}
        rows = {}
        for table in prefect_schema.BLOCK_TABLES:
            columns = [row[1] for row in connection.execute(f"PRAGMA table_info({table})")]
            rows[table] = sorted(
                tuple(names[c].get(v, v) if c in names
                      # a set, written in its iteration order: the string hashes' order
                      else sorted(json.loads(v)) if c == "capabilities" else v
                      for c, v in zip(columns, row, strict=True)
                      if c not in ("id", "created", "updated"))
                for row in connection.execute(f"SELECT * FROM {table}"))
    finally:
        connection.close()
    return rows


@pytest.mark.integration
def test_the_block_types_are_those_a_server_registers_as_it_starts(tmp_path: Path) -> None:
    """prefect_blocks.sql holds the block types a real local server registers on its first
    start (after a Prefect upgrade: python -m nb2pipe.execute.prefect_schema): the same rows,
    ids and dates aside."""
    version = local_server.prefect_version()
    shipped = prefect_schema.BLOCKS.read_text(encoding="utf-8")
    assert shipped.splitlines()[0] == prefect_schema.BLOCKS_HEADER + version
    (tmp_path / "server").mkdir()
    registered = prefect_schema.register(tmp_path / "server")
    assert prefect_schema.seed(tmp_path / "seeded.db", version).blocks
    expected = _block_rows(registered)
    assert all(expected.values())
    assert _block_rows(tmp_path / "seeded.db") == expected, (
        "prefect_blocks.sql is stale: python -m nb2pipe.execute.prefect_schema")


@pytest.mark.integration
def test_the_first_run_starts_the_server_and_the_next_one_reuses_it(tmp_path: Path,
                                                                    cache: Path) -> None:
    notebook = two_steps(tmp_path / "nb")
    first = nb2pipe("run", str(notebook), cache=cache)
    assert first.returncode == 0, first.stderr[-3000:]
    lines = first.stdout.splitlines()
    link = next(line for line in lines if line.startswith("flow run: "))
    step = next(i for i, line in enumerate(lines) if line.strip().startswith("make"))
    assert lines.index(STARTING) < lines.index("running…") < lines.index(link) < step
    server = record(cache)
    url = link.removeprefix("flow run: ")
    assert url.startswith(f"http://127.0.0.1:{server.port}/runs/flow-run/")
    assert flow_run_state(url) == "COMPLETED"

    second = nb2pipe("run", str(notebook), "--no-cache", "--progress", "jsonl", cache=cache)
    assert second.returncode == 0, second.stderr[-3000:]
    events = [json.loads(line) for line in second.stdout.splitlines() if line.startswith("{")]
    phases = [e for e in events if e["event"] == "phase"]
    assert [p["phase"] for p in phases] == ["running", "flow_run"]  # no server start
    assert phases[0] == {"event": "phase", "phase": "running", "message": "running…"}
    assert phases[1]["url"].startswith(f"{server.url}/runs/flow-run/")
    assert phases[1]["url"] != url and flow_run_state(phases[1]["url"]) == "COMPLETED"
    assert events[-1] == {"event": "finished", "state": "completed", "error": None}
    assert record(cache) == server and servers_in(cache / "server") == [server.pid]


@contextlib.contextmanager
def held_once_recorded(cache: Path, seconds: float = 300) -> Iterator[threading.Event]:
    """The server a command just spawned, stopped (SIGSTOP) as soon as it is recorded, so it
    cannot answer, until the block ends, or `seconds` pass: then the event yielded is set,
    and the test fails (the command waited for the server instead of going on)."""
    deadline = time.monotonic() + 120
    while (server := local_server.status(root=cache).server) is None:
        assert time.monotonic() < deadline, "no server was recorded"
        time.sleep(0.02)
    os.killpg(server.pid, signal.SIGSTOP)
    expired = threading.Event()

    def release() -> None:
        expired.set()
        os.killpg(server.pid, signal.SIGCONT)

    timer = threading.Timer(seconds, release)
    timer.start()
    try:
        yield expired
    finally:
        timer.cancel()
        os.killpg(server.pid, signal.SIGCONT)
    assert not expired.is_set(), "the command waited for the held server"


@pytest.mark.integration
def test_the_flow_is_imported_while_the_server_starts(tmp_path: Path, cache: Path) -> None:
    """A cold run does not wait for the server before it converts the notebook and imports
    the flow: with the server held (SIGSTOP) before it can answer, the flow's process says it
    is ready and waits; let go, the run completes, and the waits say since when and why."""
    notebook = two_steps(tmp_path / "nb")
    run = subprocess.Popen([sys.executable, "-m", "nb2pipe", "run", str(notebook),
                            "--progress", "jsonl"], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, env=environment(cache))
    assert run.stdout is not None
    events = []
    with held_once_recorded(cache):
        for line in run.stdout:
            events.append(json.loads(line))
            if events[-1].get("message") == local_server.WAITING:
                break
    server = record(cache)
    out, err = run.communicate(timeout=600)
    assert run.returncode == 0, err[-3000:]
    events += [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    phases = [e for e in events if e["event"] == "phase"]
    assert [p["phase"] for p in phases] == ["server", "server", "running", "flow_run"]
    starting, waiting = phases[0], phases[1]
    assert starting == {"event": "phase", "phase": "server", "message": STARTING,
                        "since": server.started, "detail": "first start: creating its database"}
    assert waiting == {"event": "phase", "phase": "server", "message": local_server.WAITING,
                       "since": server.started, "detail": "the flow is imported and ready to run"}
    assert phases[3]["url"].startswith(f"{server.url}/runs/flow-run/")
    assert events[-1] == {"event": "finished", "state": "completed", "error": None}


@pytest.mark.integration
def test_verify_of_two_notebooks_runs_papermill_while_their_server_starts(
        tmp_path: Path, cache: Path) -> None:
    """One `nb2pipe verify` of two notebooks starts one server, and papermill runs the first
    notebook while it starts: held (SIGSTOP), the server cannot answer, yet both papermill
    runs finish."""
    notebooks = [two_steps(tmp_path / "nb", name) for name in ("one", "two")]
    command = subprocess.Popen([sys.executable, "-m", "nb2pipe", "verify", *map(str, notebooks)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env=environment(cache))
    assert command.stdout is not None
    lines = []
    with held_once_recorded(cache):
        for line in command.stdout:
            lines.append(line.rstrip("\n"))
            if lines[-1].startswith("papermill run 2/2 done"):
                break
    server = record(cache)
    out, err = command.communicate(timeout=900)
    assert command.returncode == 0, err[-3000:]
    lines += out.splitlines()
    assert lines.count(STARTING) == 1
    for notebook in notebooks:
        assert f"{notebook.name}: the pipeline computes what the notebook computes" in " ".join(
            lines)
    links = [line for line in lines if line.startswith("flow run: ")]
    assert len(links) == 2 and all(f"{server.url}/runs/flow-run/" in link for link in links)
    assert record(cache).pid == server.pid


@pytest.mark.integration
def test_server_status_start_stop_leave_nothing_running(cache: Path) -> None:
    status = nb2pipe("server", "status", cache=cache)
    assert status.returncode == 1 and "local Prefect server: not running" in status.stdout
    started = nb2pipe("server", "start", cache=cache)
    assert started.returncode == 0, started.stderr
    assert started.stdout.startswith(STARTING + "\nlocal Prefect server: running\n")
    document = json.loads(nb2pipe("server", "status", "--json", cache=cache).stdout)
    server = record(cache)
    assert document["state"] == "running" and document["pid"] == server.pid
    assert document["url"] == server.url and document["folder"] == str(cache / "server")
    status = nb2pipe("server", "status", cache=cache)
    assert status.returncode == 0
    for label in (f"URL:      {server.url}", f"pid:      {server.pid}", "uptime:   ",
                  f"state:    {cache / 'server'}"):
        assert label in status.stdout
    assert group_members(server.pid)  # the server and whatever it started

    stopped = nb2pipe("server", "stop", cache=cache)
    assert stopped.stdout.strip() == (f"stopped the local Prefect server (pid {server.pid}, "
                                      f"{server.url})")
    assert group_members(server.pid) == [] and servers_in(cache / "server") == []
    assert nb2pipe("server", "status", cache=cache).returncode == 1
    assert nb2pipe("server", "stop", cache=cache).stdout.strip() == (
        "no local Prefect server was running")


@pytest.mark.integration
def test_the_servers_block_types_include_the_collections_and_a_client_saves_one(
        cache: Path) -> None:
    """Block types are registered from the catalogue Prefect ships, collections included,
    although the server imports none; a client saving a block of an installed collection
    stores it and loads it back."""
    assert nb2pipe("server", "start", cache=cache).returncode == 0
    api = record(cache).api_url
    for slug in ("s3-bucket", "aws-credentials", "secret", "local-file-system"):
        with urllib.request.urlopen(f"{api}/block_types/slug/{slug}", timeout=30) as reply:
            assert json.loads(reply.read())["slug"] == slug
    code = ("from prefect_aws import S3Bucket\n"
            "S3Bucket(bucket_name='values').save('kept', overwrite=True)\n"
            "print(S3Bucket.load('kept').bucket_name)\n")
    saved = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           env=environment(cache, PREFECT_API_URL=api), timeout=120)
    assert saved.returncode == 0, saved.stderr
    assert saved.stdout.strip().splitlines()[-1] == "values"


class _Impostor(http.server.BaseHTTPRequestHandler):
    """Another program on the recorded port, answering a health check as Prefect would."""

    def do_GET(self) -> None:  # the name http.server calls
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"true")

    def log_message(self, *args: Any) -> None:
        pass


@pytest.mark.integration
def test_stale_records_are_replaced_and_other_programs_left_alone(cache: Path) -> None:
    folder = local_server.state_folder(cache)
    folder.mkdir(parents=True)
    # 1. The recorded process is gone, and another program listens on its port.
    impostor = http.server.HTTPServer(("127.0.0.1", 0), _Impostor)
    threading.Thread(target=impostor.serve_forever, daemon=True).start()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    port = impostor.server_address[1]
    local_server._write_record(folder, local_server.Server(
        dead.pid, int(port), local_server.prefect_version(), sys.executable, time.time()))
    try:
        started = nb2pipe("server", "start", cache=cache)
        assert started.returncode == 0 and STARTING in started.stdout, started.stderr
        server = record(cache)
        assert server.pid != dead.pid and server.port != port
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health") as reply:
            assert reply.read() == b"true"  # the other program still runs
    finally:
        impostor.shutdown()
        impostor.server_close()

    # 2. The server is nb2pipe's but runs another Prefect version.
    local_server._write_record(folder, local_server.Server(
        server.pid, server.port, "3.0.0", server.python, server.started))
    upgraded = nb2pipe("server", "start", cache=cache)
    assert upgraded.returncode == 0, upgraded.stdout + upgraded.stderr
    assert (f"the local Prefect server runs Prefect 3.0.0, this is "
            f"{local_server.prefect_version()}: restarting it…") in upgraded.stdout
    assert group_members(server.pid) == []
    server = record(cache)

    # 2b. The server was started by an older nb2pipe (its UI asked Prefect's default port).
    local_server._write_record(folder, local_server.Server(
        server.pid, server.port, server.prefect, server.python, server.started, setup=0))
    older = nb2pipe("server", "start", cache=cache)
    assert older.returncode == 0, older.stdout + older.stderr
    assert ("the local Prefect server was started by an older nb2pipe: restarting it…"
            in older.stdout)
    assert group_members(server.pid) == []
    server = record(cache)
    assert server.setup == local_server.SETUP

    # 3. The server is nb2pipe's but does not answer (stopped long after it started).
    os.kill(server.pid, signal.SIGSTOP)
    local_server._write_record(folder, local_server.Server(
        server.pid, server.port, server.prefect, server.python, server.started - 3600))
    hung = nb2pipe("server", "start", cache=cache)
    assert hung.returncode == 0, hung.stdout + hung.stderr
    assert "the local Prefect server does not answer: restarting it…" in hung.stdout
    assert group_members(server.pid) == []
    server = record(cache)

    # 4. The recorded pid now belongs to another program (pids are reused).
    other = subprocess.Popen(["sleep", "300"], start_new_session=True)
    try:
        local_server._write_record(folder, local_server.Server(
            other.pid, server.port, server.prefect, server.python, server.started))
        assert local_server.status(root=cache).state == "not running"
        replaced = nb2pipe("server", "start", cache=cache)
        assert replaced.returncode == 0 and STARTING in replaced.stdout
        assert other.poll() is None  # not killed
    finally:
        other.kill()
        other.wait()
    # The server the record lost track of (case 4) is stopped by hand; the new one by `cache`.
    os.killpg(server.pid, signal.SIGTERM)
    deadline = time.monotonic() + 30
    while group_members(server.pid) and time.monotonic() < deadline:
        time.sleep(0.2)


@pytest.mark.integration
def test_two_runs_started_at_once_start_one_server(tmp_path: Path, cache: Path) -> None:
    notebooks = [two_steps(tmp_path / "nb", name) for name in ("one", "two")]
    runs = [subprocess.Popen([sys.executable, "-m", "nb2pipe", "run", str(notebook)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env=environment(cache)) for notebook in notebooks]
    outputs = [run.communicate(timeout=600) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], [err[-2000:] for _, err in outputs]
    assert sum(out.splitlines().count(STARTING) for out, _ in outputs) == 1
    server = record(cache)
    assert servers_in(cache / "server") == [server.pid]
    for out, _ in outputs:
        assert f"flow run: {server.url}/runs/flow-run/" in out


@pytest.mark.integration
def test_prefect_api_url_wins(tmp_path: Path, cache: Path, prefect_server: str) -> None:
    notebook = two_steps(tmp_path / "nb")
    result = nb2pipe("run", str(notebook), cache=cache, PREFECT_API_URL=prefect_server)
    assert result.returncode == 0, result.stderr[-3000:]
    assert STARTING not in result.stdout
    base = prefect_server.removesuffix("/api")
    assert f"flow run: {base}/runs/flow-run/" in result.stdout
    assert not (cache / "server" / "server.json").exists()
    assert servers_in(cache / "server") == []


@pytest.mark.integration
def test_a_server_that_cannot_start_is_one_error_line_naming_its_log(tmp_path: Path,
                                                                   cache: Path) -> None:
    notebook = two_steps(tmp_path / "nb")
    (cache / "server" / "home" / "prefect.db").mkdir(parents=True)  # no database file there
    result = nb2pipe("run", str(notebook), cache=cache)
    log = cache / "server" / "server.log"
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "nb2pipe: error: the local Prefect server did not start (sqlalchemy.exc."
        "OperationalError: (sqlite3.OperationalError) unable to open database file); "
        f"see {log}"]
    assert "unable to open database file" in log.read_text()
    assert not (cache / "server" / "server.json").exists()
    assert servers_in(cache / "server") == []


@pytest.mark.integration
def test_ctrl_c_while_it_starts_leaves_the_server_starting(cache: Path) -> None:
    """The command is interrupted (SIGINT to its process group, as a terminal's Ctrl-C does);
    the server, in a session of its own, finishes starting and the next command uses it."""
    command = subprocess.Popen(as_from_a_terminal([sys.executable, "-m", "nb2pipe", "server",
                                                   "start"]),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env=environment(cache), start_new_session=True)
    assert command.stdout is not None
    assert command.stdout.readline().strip() == STARTING
    deadline = time.monotonic() + 60
    while not (cache / "server" / "server.json").exists() and time.monotonic() < deadline:
        time.sleep(0.05)  # the server process exists: interrupt the wait for it to answer
    assert local_server.status(root=cache).state == "starting"
    os.killpg(command.pid, signal.SIGINT)
    assert command.wait(timeout=60) == 130
    spawned = record(cache)
    assert group_members(spawned.pid)  # alive after the interrupt
    again = nb2pipe("server", "start", cache=cache)
    assert again.returncode == 0 and STARTING not in again.stdout, again.stdout
    assert record(cache).pid == spawned.pid


@pytest.mark.integration
def test_a_jupyter_servers_runs_share_one_local_server(tmp_path: Path, cache: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from browser.lab import running_jupyter, small_pipeline_notebook

    root = tmp_path / "root"
    notebooks = [small_pipeline_notebook(root / f"{name}.ipynb") for name in ("a", "b", "c")]
    monkeypatch.setenv("NB2PIPE_CACHE_DIR", str(cache))
    monkeypatch.delenv("PREFECT_API_URL")
    # The test server keeps its caches in STATE/cache: here the folder of the `cache` fixture.
    with running_jupyter(root, cache.parent) as jupyter:
        ids = []
        for notebook in notebooks[:2]:  # two at once
            status, started = jupyter.post("nb2pipe/runs", {"path": notebook.name})
            assert status == 202, started
            ids.append(started["id"])
        runs = [jupyter.wait_for_run(run_id) for run_id in ids]
        assert [run["state"] for run in runs] == ["completed", "completed"], runs
        server = record(cache)
        # the panel's link: to the local server's UI, the server it knows from its record
        assert all(run["flow_run"].startswith(f"{server.url}/runs/flow-run/") for run in runs)
        status, started = jupyter.post("nb2pipe/runs", {"path": notebooks[2].name})
        assert jupyter.wait_for_run(started["id"])["state"] == "completed"
    assert record(cache) == server and servers_in(cache / "server") == [server.pid]
    request = urllib.request.Request(f"{server.api_url}/flow_runs/filter", data=b"{}",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as reply:
        flow_runs = json.loads(reply.read())
    assert sorted(run["state_type"] for run in flow_runs) == ["COMPLETED"] * 3


@pytest.mark.integration
def test_verify_and_run_json_report_their_phases(tmp_path: Path, cache: Path,
                                                 prefect_server: str) -> None:
    notebook = two_steps(tmp_path / "nb")
    verified = nb2pipe("verify", str(notebook), cache=cache, PREFECT_API_URL=prefect_server)
    assert verified.returncode == 0, verified.stderr[-3000:]
    lines = verified.stdout.splitlines()
    expected = ["running the notebook with papermill, twice side by side…",
                "papermill run 1/2 done", "papermill run 2/2 done", "running the pipeline…",
                f"flow run: {prefect_server.removesuffix('/api')}/runs/flow-run/",
                "pipeline done", "two.ipynb: the pipeline computes what the notebook computes"]
    found = [next(i for i, line in enumerate(lines) if line.startswith(start))
             for start in expected]
    assert found == sorted(found), lines

    # --json: stdout holds the document alone (with the flow run's address), phases go to stderr
    result = nb2pipe("run", str(notebook), "--json", cache=cache, PREFECT_API_URL=prefect_server)
    assert result.returncode == 0, result.stderr[-3000:]
    document = json.loads(result.stdout)
    assert document["ok"] and "running…" in result.stderr.splitlines()
    assert document["flow_run_url"].startswith(prefect_server.removesuffix("/api"))
    assert flow_run_state(document["flow_run_url"]) == "COMPLETED"
