"""matplotlib's Agg backend for steps: figures are drawn off screen and handed to the step's
capture (capture.py) at `plt.show()` and at the end of the step, as Jupyter's inline backend
hands them to the notebook. Selected with MPLBACKEND=module://<this package>.pyplot_backend."""

from __future__ import annotations

from typing import Any

from matplotlib.backend_bases import FigureManagerBase
from matplotlib.backends.backend_agg import FigureCanvasAgg

from . import capture


class FigureCanvas(FigureCanvasAgg):
    """An Agg canvas that remembers the step and the cell that made its figure."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        current = capture.current()
        self.nb2pipe_capture = current
        self.nb2pipe_cell = current.cell() if current is not None else 0


FigureManager = FigureManagerBase


def show(*args: Any, **kwargs: Any) -> None:
    """`plt.show()`: the step's open figures go to its capture, then close."""
    capture.flush_figures()
