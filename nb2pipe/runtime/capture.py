"""What a step shows, as a notebook would show it: figures, rich displays, printed text.

While a step runs (`capturing`), its outputs are collected cell by cell in the shapes of
nbformat's outputs (stream, display_data, execute_result, error), so the run's report
(report.py) renders them with nbconvert as if the notebook had run:

- matplotlib figures, through an Agg backend (pyplot_backend.py): each is rendered once, to
  PNG, at `plt.show()`, when its cell ends (cell_ends.py) or when the step ends, and closed, as
  Jupyter's inline backend does;
- `display(value)` and the last expression of a cell (`displayhook(value)` in steps.py), with
  the value's rich representations (`_repr_html_`, `_repr_png_`, `_repr_mimebundle_`, ...);
- text written to stdout and stderr, and prints that Prefect sends to its run logger.

Each output belongs to the cell whose code produced it: the innermost frame of steps.py on
the stack, mapped back to its cell through pipeline.json's line map. Outside a step (a test
calling a step function), `display` and `displayhook` do nothing.
"""

from __future__ import annotations

import base64
import contextlib
import contextvars
import importlib.abc
import importlib.util
import io
import logging
import os
import sys
import threading
import time
from collections.abc import Iterator
from types import FrameType
from typing import Any, TextIO

from . import errors, project, switches
from .manifest import LineRun

__all__ = ["Capture", "capturing", "display", "displayhook", "enabled", "flush_figures"]

# Representations asked of a displayed value, in the order nbformat keeps them.
REPRESENTATIONS = (
    ("_repr_png_", "image/png"),
    ("_repr_jpeg_", "image/jpeg"),
    ("_repr_svg_", "image/svg+xml"),
    ("_repr_html_", "text/html"),
    ("_repr_markdown_", "text/markdown"),
    ("_repr_latex_", "text/latex"),
    ("_repr_json_", "application/json"),
)
BINARY = ("image/png", "image/jpeg")
MAX_TEXT = 200_000  # characters of printed text kept per cell; the rest is cut
BACKEND = f"module://{__package__}.pyplot_backend"

_CURRENT: contextvars.ContextVar[Capture | None] = contextvars.ContextVar(
    "nb2pipe_capture", default=None)
_INSTALL = threading.Lock()


def enabled() -> bool:
    """Whether steps capture their outputs: not when the report is off (NB2PIPE_REPORT=off)."""
    return switches.read().report


class Capture:
    """The outputs of one step's run, by cell."""

    def __init__(self, step: str) -> None:
        self.step = step
        self.cells: dict[int, list[dict[str, Any]]] = {}
        self.figures: list[tuple[int, bytes]] = []  # (cell, PNG), in the order shown
        self.text_chars: dict[int, int] = {}
        self.started = time.time()
        self._steps_file = os.path.abspath(project.PROJECT / "steps.py")
        self._lines: tuple[LineRun, ...] | None = None

    # -- where --------------------------------------------------------------------------

    def cell(self) -> int:
        """The cell running now: the innermost steps.py frame that is code of this step's
        cells (0 when none is on the stack, e.g. at the step's end)."""
        frame: FrameType | None = sys._getframe(1)
        while frame is not None:
            if frame.f_code.co_filename == self._steps_file:
                found = self._locate(frame.f_lineno)
                if found:
                    return found
            frame = frame.f_back
        return 0

    def _locate(self, line: int) -> int:
        if self._lines is None:
            try:
                self._lines = project.step(self.step).lines
            except (OSError, ValueError, KeyError):
                self._lines = ()
        for start, cell, _first, count in self._lines:
            if start <= line < start + count:
                return int(cell)
        return 0

    # -- what ---------------------------------------------------------------------------

    def add(self, cell: int, output: dict[str, Any]) -> None:
        self.cells.setdefault(cell, []).append(output)

    def stream(self, name: str, text: str) -> None:
        cell = self.cell()
        used = self.text_chars.get(cell, 0)
        if used >= MAX_TEXT:
            return
        if used + len(text) > MAX_TEXT:
            text = text[:MAX_TEXT - used] + "\n[... output cut ...]\n"
        self.text_chars[cell] = used + len(text)
        outputs = self.cells.setdefault(cell, [])
        if outputs and outputs[-1]["output_type"] == "stream" and outputs[-1]["name"] == name:
            outputs[-1]["text"] += text
        else:
            outputs.append({"output_type": "stream", "name": name, "text": text})

    def figure(self, cell: int, png: bytes, text: str) -> None:
        self.figures.append((cell, png))
        self.add(cell, {"output_type": "display_data", "metadata": {},
                        "data": {"image/png": base64.b64encode(png).decode("ascii"),
                                 "text/plain": text}})

    def error(self, exc: BaseException) -> int:
        """The error that ended the step, in the cell that raised it; returns that cell."""
        found = errors.where(project.manifest(), self._steps_file, self.step,
                             _frames(exc))
        cell = found[0] if found else 0
        self.add(cell, {"output_type": "error", "ename": type(exc).__name__,
                        "evalue": str(exc), "traceback": _traceback(exc, self._steps_file)})
        return cell


def _frames(exc: BaseException) -> list[Any]:
    import traceback

    return list(traceback.extract_tb(exc.__traceback__))


def _traceback(exc: BaseException, steps_file: str) -> list[str]:
    """The traceback from the step's own code on (nb2pipe's frames above it left out)."""
    import traceback

    lines = traceback.format_exception(exc)
    for index, line in enumerate(lines):
        if steps_file in line:
            return [lines[0], *lines[index:]] if index else lines
    return lines


@contextlib.contextmanager
def capturing(step: str) -> Iterator[Capture]:
    """Collect what the step shows while it runs; figures still open at its end are kept
    (in the cell that drew them) and closed."""
    capture = Capture(step)
    _install()
    token = _CURRENT.set(capture)
    try:
        yield capture
    finally:
        try:
            flush_figures(capture)
        finally:
            _CURRENT.reset(token)


def current() -> Capture | None:
    return _CURRENT.get()


# -- displayed values ---------------------------------------------------------------------


def display(*values: Any) -> None:
    """IPython's `display`, for steps: each value with its rich representations."""
    capture = _CURRENT.get()
    if capture is None:
        return
    cell = capture.cell()
    for value in values:
        capture.add(cell, {"output_type": "display_data", "metadata": {},
                           "data": mime_bundle(value)})


def displayhook(value: Any) -> None:
    """The value of a cell's last expression, shown as Jupyter shows it (None is not)."""
    if value is None:
        return
    capture = _CURRENT.get()
    if capture is None:
        return
    cell = capture.cell()
    capture.add(cell, {"output_type": "execute_result", "execution_count": cell or None,
                       "metadata": {}, "data": mime_bundle(value)})


def mime_bundle(value: Any) -> dict[str, Any]:
    """The value's representations by MIME type (binary ones base64), text/plain always."""
    bundle: dict[str, Any] = {}
    if _is_figure(value):
        bundle["image/png"] = base64.b64encode(_png(value)).decode("ascii")
    else:
        method = getattr(value, "_repr_mimebundle_", None)
        if callable(method):
            with contextlib.suppress(Exception):
                found = method(include=None, exclude=None)
                data = found[0] if isinstance(found, tuple) else found
                if isinstance(data, dict):
                    bundle.update({k: v for k, v in data.items() if isinstance(k, str)})
        for name, mime in REPRESENTATIONS:
            method = getattr(value, name, None)
            if mime in bundle or not callable(method) or isinstance(value, type):
                continue
            try:
                shown = method()
            except Exception:  # a representation that fails is left out, as IPython does
                continue
            if isinstance(shown, tuple):
                shown = shown[0]
            if shown is None:
                continue
            if mime in BINARY and isinstance(shown, bytes):
                shown = base64.b64encode(shown).decode("ascii")
            bundle[mime] = shown
    for mime in BINARY:
        if isinstance(bundle.get(mime), bytes):
            bundle[mime] = base64.b64encode(bundle[mime]).decode("ascii")
    try:
        bundle["text/plain"] = repr(value)
    except Exception as exc:  # a broken __repr__ must not fail the step
        bundle["text/plain"] = f"<{type(value).__name__}: repr failed: {exc}>"
    return bundle


# -- figures ------------------------------------------------------------------------------


def _is_figure(value: Any) -> bool:
    return any(c.__module__ == "matplotlib.figure" and c.__name__ == "Figure"
               for c in type(value).__mro__)


def _png(figure: Any) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", bbox_inches="tight")
    return buffer.getvalue()


def flush_figures(capture: Capture | None = None) -> None:
    """Render the open figures this step drew (to PNG, once) and close them: `plt.show()`,
    the end of a cell and the end of the step."""
    capture = capture or _CURRENT.get()
    pyplot = sys.modules.get("matplotlib.pyplot")
    if capture is None or pyplot is None:
        return
    from matplotlib._pylab_helpers import Gcf

    for manager in list(Gcf.get_all_fig_managers()):
        canvas = manager.canvas
        owner = getattr(canvas, "nb2pipe_capture", None)
        if owner is not None and owner is not capture:
            continue  # another step's figure (steps running at the same time)
        _show(capture, canvas)
        pyplot.close(canvas.figure)


def figure_closing(canvas: Any) -> None:
    """A figure is being closed: by code outside the step's cells (it is shown, as Jupyter
    shows a cell's figures), or by a cell's own code (it is not)."""
    capture = _CURRENT.get()
    owner: object = getattr(canvas, "nb2pipe_capture", None)
    if capture is None or owner is not capture:
        return
    if getattr(canvas, "nb2pipe_shown", False) or capture.cell():
        return  # shown already, or closed by a line of a cell
    _show(capture, canvas)


def _show(capture: Capture, canvas: Any) -> None:
    if getattr(canvas, "nb2pipe_shown", False):
        return
    canvas.nb2pipe_shown = True
    figure = canvas.figure
    if figure.get_axes() or figure.texts or figure.images:
        cell = getattr(canvas, "nb2pipe_cell", 0) or capture.cell()
        capture.figure(cell, _png(figure), repr(figure))


# -- text ---------------------------------------------------------------------------------


class _Tee(io.TextIOBase):
    """sys.stdout / sys.stderr: text goes where it went, and to the step that wrote it."""

    def __init__(self, stream: TextIO, name: str) -> None:
        self.wrapped = stream
        self.name_ = name

    def write(self, text: str) -> int:
        capture = _CURRENT.get()
        if capture is not None and text:
            capture.stream(self.name_, text)
        return self.wrapped.write(text)

    def flush(self) -> None:
        self.wrapped.flush()

    def isatty(self) -> bool:
        return self.wrapped.isatty()

    def fileno(self) -> int:
        return self.wrapped.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]  # TextIOBase declares it read-only
        return getattr(self.wrapped, "encoding", "utf-8")

    def __getattr__(self, name: str) -> Any:
        return getattr(self.wrapped, name)


class _PrintedToLog(logging.Handler):
    """Prints that Prefect turns into log records (`log_prints=True`, as in deployed runs)."""

    def emit(self, record: logging.LogRecord) -> None:
        capture = _CURRENT.get()
        if capture is not None and record.levelno == logging.INFO:
            with contextlib.suppress(Exception):
                capture.stream("stdout", record.getMessage() + "\n")


def _install() -> None:
    """Once per process (and again if someone replaced them): the text tees, the log
    handler, and the figure backend (set before any step draws)."""
    with _INSTALL:
        for name in ("stdout", "stderr"):
            stream = getattr(sys, name)
            if stream is not None and not isinstance(stream, _Tee):
                setattr(sys, name, _Tee(stream, name))
        logger = logging.getLogger("prefect.task_runs")
        if not any(isinstance(h, _PrintedToLog) for h in logger.handlers):
            logger.addHandler(_PrintedToLog())
        _use_backend()


def _use_backend() -> None:
    """Figures go to the capture: nb2pipe's Agg backend, unless the user chose another
    (MPLBACKEND other than Agg, which draws nothing on screen either). Chosen in this process
    only: through the environment, the backend would reach the processes a step starts
    (`!python plot.py`, a notebook kernel), which cannot import it."""
    chosen = os.environ.get("MPLBACKEND", "")
    if chosen and chosen != BACKEND and chosen.lower() != "agg":
        return
    matplotlib = sys.modules.get("matplotlib")
    if matplotlib is None:  # chosen when something imports it (pandas' `df.plot()`, ...)
        if not any(isinstance(f, _BackendOnImport) for f in sys.meta_path):
            sys.meta_path.insert(0, _BackendOnImport())
        return
    if dict.__getitem__(matplotlib.rcParams, "backend") == BACKEND:
        return
    pyplot = sys.modules.get("matplotlib.pyplot")
    if pyplot is not None:
        pyplot.switch_backend(BACKEND)  # closes open figures: none, before a step draws
    else:
        matplotlib.use(BACKEND)


class _BackendOnImport(importlib.abc.MetaPathFinder):
    """Chooses the capture's backend as soon as matplotlib is imported, then leaves."""

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> Any:
        if fullname != "matplotlib":
            return None
        with contextlib.suppress(ValueError):
            sys.meta_path.remove(self)
        spec = importlib.util.find_spec(fullname)
        loader = getattr(spec, "loader", None)
        if spec is None or loader is None or not hasattr(loader, "exec_module"):
            return spec
        run = loader.exec_module

        def exec_module(module: Any) -> None:
            run(module)
            with contextlib.suppress(Exception):  # a matplotlib without `use`: its default
                module.use(BACKEND)

        loader.exec_module = exec_module  # this spec's own loader
        return spec
