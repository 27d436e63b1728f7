"""Run the benchmarks that rewrite BENCHMARKS.md (and the README's headline paragraph).

    python benchmarks/run.py                  # generator, skill, scaling, comm, mfu (GPU)
    python benchmarks/run.py scaling comm     # some of them

`nox -s "bench(name=weathermixer)"` runs this file. The scripts can also run alone.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ORDER = ("generator", "skill", "scaling", "comm", "mfu")


def main(argv: list[str]) -> int:
    wanted = argv or list(ORDER)
    unknown = [w for w in wanted if w not in ORDER]
    if unknown:
        print(f"unknown benchmark(s) {unknown}; choose from {list(ORDER)}", file=sys.stderr)
        return 2
    for name in ORDER:
        if name in wanted:
            print(f"== {name}", flush=True)
            subprocess.run([sys.executable, str(HERE / f"{name}.py")], check=True, cwd=HERE)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
