"""What a generated project needs at run time, copied into it as the package `nb2pipe_runtime`.

The copy is the same files as nb2pipe's own `nb2pipe/runtime/`, so a project runs, caches and
reports errors without nb2pipe installed. Modules (only relative imports between them; pandas,
numpy, pyarrow and Prefect are imported where they are used, so `import nb2pipe_runtime` and the
serializers work without Prefect):

    manifest     pipeline.json as a type, read and checked in one place (untrusted input)
    project      this project's manifest, the folder steps run in, each step's code hash
    errors       an error in a step, named by its notebook cell and line
    values       values as files: parquet, Arrow IPC, .npy, pickle
    compare      whether two values are the same (generated tests)
    fingerprint  small summaries of values, and verify's hook writing each step's
    final        a function's locals as it returns (what a step's cells leave behind)
    store        the artifact store: a local folder or a Prefect filesystem block
    handoff      Values: what a step leaves for the next, in memory or in the store
    auth         the storage key that signs what is kept in the result storage
    records      a step's record in the result storage: signed JSON, and its guard
    cache        StepCache: the Prefect cache policy of every step
    tasks        step_task and run_step: a step as a Prefect task (call its code, save its
                 values, publish its metrics); result storage; the tables of hooks and runners
    switches     the environment variables that change what a step does, read in one place
    calls        a step's call as hooks see it (StepCall, Hook) and the call in this process
    runners      the task runner (threads, processes, Dask) and per-step Dask resources
    dask_cluster a Dask cluster whose workers share nothing: the project shipped to them,
                 the run's settings sent with each step, resources checked first
    dask_worker  its side on the workers (sent to them by value)
    progress     step events for `nb2pipe run`, from Prefect's state hooks
    notebook     notebook mode: a step as a papermill notebook
    capture      what a step shows (figures, displays, prints), for the run's report
    cell_ends    where a step's cells end: figures shown and closed there, as in Jupyter
    reporting    the report's hook on each step: its attempt, what it showed, its record
    report       the run's report: each step's record, then the HTML page and its artifacts
    attempts     where each step ran, attempt by attempt (a Dask worker lost mid-step)
    render       the page, with nbconvert, in a process that loads it while the steps run

Configuration, read when the flow is imported or a step runs (see README.md of the project):
NB2PIPE_RESULT_STORAGE, NB2PIPE_CACHE_DIR, NB2PIPE_CACHE=off, NB2PIPE_STORAGE_KEY,
NB2PIPE_STORAGE_KEY_BLOCK, NB2PIPE_CONFIG_DIR, NB2PIPE_WORKDIR, NB2PIPE_MODE, NB2PIPE_NOTEBOOK,
NB2PIPE_RUN_DIR, NB2PIPE_DASK_ADDRESS, NB2PIPE_DASK_WORKERS; `nb2pipe run` and `verify` also set
NB2PIPE_PROGRESS, NB2PIPE_FINGERPRINTS and NB2PIPE_HANDOFF.
"""

PACKAGE = "nb2pipe_runtime"  # this package's name in a generated project
