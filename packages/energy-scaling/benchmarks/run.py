"""Write BENCHMARKS.md: the meter's overhead, then a sweep (``--device cuda`` on a GPU).

python benchmarks/run.py [--device cuda]
"""

from __future__ import annotations

import overhead
import sweep

if __name__ == "__main__":
    overhead.main()
    sweep.main()
