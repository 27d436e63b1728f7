"""PETNet: spiking-network coincidence processing for PET.

* :mod:`petnet.sim` — Monte-Carlo acquisitions (scanner presets, sources, scatter, dead time);
* :mod:`petnet.classical` — the paper's sliding window and a GATE-style coincidence sorter;
* :mod:`petnet.model`, :mod:`petnet.train`, :mod:`petnet.inference` — the spiking networks;
* :mod:`petnet.metrics`, :mod:`petnet.evaluate` — one scoring function for every method.
"""

from petnet.__about__ import __version__
from petnet.classical import Coincidences, gate_sorter, sliding_window
from petnet.metrics import Scores, score
from petnet.scanner import Scanner, preset
from petnet.singles import Singles

__all__ = [
    "Coincidences",
    "Scanner",
    "Scores",
    "Singles",
    "__version__",
    "gate_sorter",
    "preset",
    "score",
    "sliding_window",
]
