"""matplotlib's Agg backend for steps: figures are drawn off screen and handed to the step's
capture (capture.py) at `plt.show()`, when the cell that drew them ends (cell_ends.py) and at
the end of the step, as Jupyter's inline backend hands them to the notebook. capture.py
selects it in the process that runs steps.
"""

from __future__ import annotations

from typing import Any

from matplotlib.backend_bases import FigureManagerBase
from matplotlib.backends.backend_agg import FigureCanvasAgg

from . import capture


class FigureManager(FigureManagerBase):
    def destroy(self) -> None:
        """Closed outside the lines of a cell: shown first (a cell's own `plt.close()` is
        not)."""
        capture.figure_closing(self.canvas)
        super().destroy()


class FigureCanvas(FigureCanvasAgg):
    """An Agg canvas that remembers the step and the cell that made its figure."""

    manager_class = FigureManager

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        current = capture.current()
        self.nb2pipe_capture = current
        self.nb2pipe_cell = current.cell() if current is not None else 0
        self.nb2pipe_shown = False


def show(*args: Any, **kwargs: Any) -> None:
    """`plt.show()`: the step's open figures go to its capture, then close."""
    capture.flush_figures()
