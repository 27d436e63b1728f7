"""Write BENCHMARKS.md: NT against OT fusion, weight matching and weight averaging, in one run.

    python benchmarks/run.py            # both tables, a few minutes on 2 cores
    python benchmarks/run.py --quick    # one seed, to check the script

Accuracy: on the digits, for every seed and ensemble size, the members are trained once and all
four methods fuse the same members; each fused model is fine-tuned with the same settings and
its test accuracy is read at fixed epochs (never used to choose anything); "epochs to best
member" is the first epoch at which validation accuracy reaches the best member's. Medians
over the seeds.

Cost: fusion time and peak memory of each method on wider MLPs (random weights: the cost does
not depend on training), every measurement in a fresh process whose peak resident memory
(Linux's VmHWM, reset through ``/proc/self/clear_refs`` right before the fusion) is compared
with its resident memory before; medians of three processes.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
from neuron_transplantation.config import FinetuneConfig, TrainConfig
from neuron_transplantation.data import load_split
from neuron_transplantation.fusion import Ensemble, fuse
from neuron_transplantation.train import accuracy, finetune, train_members

from shared_hpc import SerialComm
from shared_hpc.bench import machine_line, markdown_table, replace_marked_block

HERE = Path(__file__).resolve().parent.parent
METHODS = ("nt", "ot", "wm", "avg")
MILESTONES = (1, 5, 10)
TRAIN = TrainConfig(dataset="digits", arch="mlp", width=64, depth=2, epochs=30)
FINETUNE = FinetuneConfig(epochs=max(MILESTONES))
COST_SIZES = ((256, 2), (256, 4), (1024, 2), (1024, 4))
COST_REPEATS = 3


def _median(values: list[float]) -> float:
    return statistics.median(values)


def _warm_up() -> None:
    """Imports and first-call costs of every method, paid before anything is timed."""
    from neuron_transplantation.models import ModelSpec, build_model

    small = [build_model(ModelSpec("mlp", (64,), 10, width=8)) for _ in range(2)]
    for method in METHODS:
        fuse(small, torch.randn(8, 64), method)


def _one_ensemble(seed: int, members: int) -> dict[str, dict[str, float]]:
    """Train one ensemble, fuse it by every method, fine-tune each; the figures per method."""
    config = TrainConfig(**{**vars(TRAIN), "members": members, "seed": seed})
    split = load_split(config.dataset, config.validation, seed)
    trained = train_members(config, split, SerialComm())
    best = trained.best()
    target = trained.validation[best]
    out = {
        "best member": {"fused": accuracy(trained.models[best], split.test)},
        "ensemble": {"fused": accuracy(Ensemble(trained.models), split.test)},
    }
    example = split.train.tensors[0][:8]
    for method in METHODS:
        fused = fuse(trained.models, example, method)
        row = {"fused": accuracy(fused.model, split.test), "seconds": fused.seconds}

        def at_epoch(epoch: int, _validation: float, model=fused.model, row=row) -> None:
            if epoch in MILESTONES:
                row[f"epoch {epoch}"] = accuracy(model, split.test)

        torch.manual_seed(FINETUNE.seed)
        curve = finetune(fused.model, split, FINETUNE, at_epoch)
        reached = [e for e, v in enumerate(curve) if v >= target]
        row["to best"] = reached[0] if reached else float("inf")
        out[method] = row
    return out


def accuracy_table(seeds: list[int]) -> str:
    _warm_up()
    rows = []
    for members in (2, 4):
        runs = [_one_ensemble(seed, members) for seed in seeds]
        for label in (*METHODS, "best member", "ensemble"):
            figures = [run[label] for run in runs]

            def pct(key: str, figures=figures) -> str:
                if key not in figures[0]:
                    return ""
                return f"{100 * _median([f[key] for f in figures]):.2f}"

            to_best = ""
            seconds = ""
            if label in METHODS:
                epochs = _median([f["to best"] for f in figures])
                to_best = f"{epochs:.0f}" if epochs != float("inf") else f"> {FINETUNE.epochs}"
                seconds = f"{1000 * _median([f['seconds'] for f in figures]):.1f}"
            rows.append(
                [members, label, pct("fused"), *(pct(f"epoch {e}") for e in MILESTONES),
                 to_best, seconds]
            )  # fmt: skip
    header = ["members", "method", "test % after fusion",
              *(f"test % after {e} epochs" for e in MILESTONES),
              "epochs to best member (validation)", "fusion ms"]  # fmt: skip
    return (
        f"Digits, MLP 64-64-64-10 members ({TRAIN.epochs} epochs, SGD {TRAIN.lr}, momentum "
        f"{TRAIN.momentum}, batch {TRAIN.batch}); fine-tuning {FINETUNE.epochs} epochs with the "
        f"same optimiser; medians over seeds {', '.join(map(str, seeds))}; one CPU thread. "
        f"Machine: {machine_line()}.\n\n{markdown_table(header, rows)}"
    )


def _status_kib(field: str) -> int:
    """A memory figure of this process from /proc/self/status, in KiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field}")


def _cost_child(width: int, members: int, method: str) -> None:
    """In a fresh process: fuse random MLPs once, print time and peak memory growth as JSON."""
    from neuron_transplantation.models import ModelSpec, build_model

    torch.set_num_threads(1)
    _warm_up()  # imports and first-call costs outside the measurement
    spec = ModelSpec("mlp", (64,), 10, width=width, depth=2)
    models = []
    for seed in range(members):
        torch.manual_seed(seed)
        models.append(build_model(spec).eval())
    example = torch.randn(8, 64)
    Path("/proc/self/clear_refs").write_text("5")  # reset the peak (VmHWM) to the current RSS
    before = _status_kib("VmRSS")
    began = time.perf_counter()
    fuse(models, example, method)
    seconds = time.perf_counter() - began
    peak = _status_kib("VmHWM")
    print(json.dumps({"seconds": seconds, "peak_growth_mib": (peak - before) / 1024}))


def cost_table(repeats: int) -> str:
    rows = []
    for width, members in COST_SIZES:
        for method in METHODS:
            runs = []
            for _ in range(repeats):
                child = subprocess.run(
                    [sys.executable, __file__, "--cost-child", str(width), str(members), method],
                    capture_output=True, text=True, check=True,
                )  # fmt: skip
                runs.append(json.loads(child.stdout.strip().splitlines()[-1]))
            rows.append(
                [width, members, method, f"{1000 * _median([r['seconds'] for r in runs]):.1f}",
                 f"{_median([r['peak_growth_mib'] for r in runs]):.1f}"]
            )  # fmt: skip
    header = ["width", "members", "method", "fusion ms", "peak RSS growth MiB"]
    return (
        "MLP 64-w-w-10 members with random weights, fusion only (no data), one CPU thread; each "
        f"figure the median of {repeats} fresh processes; peak RSS growth is the peak resident "
        "memory during the fusion (VmHWM, reset right before it) minus the resident memory "
        "before it. "
        f"Machine: {machine_line()}.\n\n{markdown_table(header, rows)}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one seed, one cost repeat")
    parser.add_argument("--cost-child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.cost_child:
        width, members, method = args.cost_child
        _cost_child(int(width), int(members), method)
        return
    torch.set_num_threads(1)
    seeds = [0] if args.quick else [0, 1, 2]
    accuracy_text = accuracy_table(seeds)
    replace_marked_block(HERE / "BENCHMARKS.md", "accuracy", accuracy_text, append=True)
    print(accuracy_text, flush=True)
    cost_text = cost_table(1 if args.quick else COST_REPEATS)
    replace_marked_block(HERE / "BENCHMARKS.md", "cost", cost_text, append=True)
    print(cost_text)


if __name__ == "__main__":
    main()
