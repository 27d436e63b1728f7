"""PETNet: spiking-network coincidence processing for PET.

* ``petnet.sim`` — Monte-Carlo acquisitions (scanner presets, sources, scatter, dead time);
* ``petnet.classical`` — the paper's sliding window and a GATE-style coincidence sorter;
* ``petnet.model``, ``petnet.train``, ``petnet.inference`` — the spiking networks;
* ``petnet.events`` — event-driven inference of the ``ring`` network;
* ``petnet.gate`` — GATE singles (ROOT, ASCII) in; ``petnet.tuning`` — the tuned GATE baseline;
* ``petnet.metrics``, ``petnet.evaluate`` — one scoring function for every method;
* ``petnet.config`` — every setting, as the dataclasses the commands' flags and TOML fill.
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
