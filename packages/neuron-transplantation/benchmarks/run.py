"""Write BENCHMARKS.md: NT against OT fusion, weight matching, weight averaging and knowledge
distillation, members trained on shards against FedAvg, and the cost of fusion, in one run.

    python benchmarks/run.py            # every table, about half an hour on 2 shared cores
    python benchmarks/run.py --quick    # one seed, fewer epochs, to check the script
    python benchmarks/run.py --only accuracy,shards   # some tables

Accuracy: on the digits (MLP) and MNIST-1D (1-D CNN), for every seed and ensemble size, the
members are trained once and every method fuses the same members; each fused model is
fine-tuned with the same settings (kd: distilled with them, starting from the best member) and
its test accuracy is read at fixed epochs (never used to choose anything); "epochs to best
member" is the first epoch at which validation accuracy reaches the best member's. Medians
over the seeds. Architectures: the same on the digits for LeNet with batch norm, VGG11-style
with batch norm and ResNet18-style members, one seed, fewer epochs.

Shards: every member trains on its own quarter (half) of the digits' training data; NT fuses
them, FedAvg trains one model on the same shards with the same local epochs per shard.

Cost: fusion time and peak memory of each method on wider MLPs (random weights: the cost does
not depend on training), every measurement in a fresh process whose peak resident memory
(Linux's VmHWM, reset through ``/proc/self/clear_refs`` right before the fusion) is compared
with its resident memory before; medians of three processes.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
from neuron_transplantation.config import FinetuneConfig, TrainConfig
from neuron_transplantation.data import load_split
from neuron_transplantation.distill import distill
from neuron_transplantation.federated import fedavg
from neuron_transplantation.fusion import Ensemble, fuse
from neuron_transplantation.train import accuracy, finetune, reset_batch_norm, train_members

from shared_hpc import SerialComm
from shared_hpc.bench import machine_line, markdown_table, replace_marked_block

HERE = Path(__file__).resolve().parent.parent
METHODS = ("nt", "ot", "wm", "avg")
MILESTONES = (1, 5, 10)
SETTINGS = {  # name: (members' settings, seeds)
    "digits": (TrainConfig(dataset="digits", arch="mlp", width=64, depth=2, epochs=30), 5),
    "mnist1d": (TrainConfig(dataset="mnist1d", arch="cnn1d", width=64, epochs=30), 3),
}
ARCHITECTURES = ("lenet-bn", "vgg-bn", "resnet")
ARCH_EPOCHS = 10
FEDAVG_LOCAL_EPOCHS = 3
FINETUNE = FinetuneConfig(epochs=max(MILESTONES))
COST_SIZES = (("256", 2), ("256", 4), ("1024", 2), ("1024", 4), ("resnet18", 2))
COST_METHODS = ("nt", "nt-wide", "ot", "wm", "avg")
COST_REPEATS = 3


def _median(values: list[float]) -> float:
    return statistics.median(values)


def _warm_up() -> None:
    """Imports and first-call costs of every method, paid before anything is timed."""
    from neuron_transplantation.models import ModelSpec, build_model

    small = [build_model(ModelSpec("mlp", (64,), 10, width=8)) for _ in range(2)]
    for method in METHODS:
        fuse(small, torch.randn(8, 64), method)


def _milestones(model, split, row: dict[str, float]):
    """A progress callback that records test accuracy at the milestone epochs in ``row``."""

    def at_epoch(epoch: int, _validation: float) -> None:
        if epoch in MILESTONES:
            row[f"epoch {epoch}"] = accuracy(model, split.test)

    return at_epoch


def _to_best(curve: list[float], target: float) -> float:
    reached = [e for e, v in enumerate(curve) if v >= target]
    return reached[0] if reached else float("inf")


def _one_ensemble(config: TrainConfig, finetune_config: FinetuneConfig) -> dict[str, dict]:
    """Train one ensemble, fuse it by every method (and distil it), fine-tune each; figures."""
    split = load_split(config.dataset, config.validation, config.seed)
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
        reset = copy.deepcopy(fused.model)
        if reset_batch_norm(reset, split.train):
            row["reset"] = accuracy(reset, split.test)
        torch.manual_seed(finetune_config.seed)
        curve = finetune(fused.model, split, finetune_config, _milestones(fused.model, split, row))
        row["to best"] = _to_best(curve, target)
        out[method] = row
    student = copy.deepcopy(trained.models[best])
    row = {"fused": out["best member"]["fused"]}
    torch.manual_seed(finetune_config.seed)
    curve = distill(trained.models, student, split, finetune_config,
                    progress=_milestones(student, split, row))  # fmt: skip
    row["to best"] = _to_best(curve, target)
    out["kd"] = row
    return out


def _rows(label: list, runs: list[dict], keys: list[str], epochs: int) -> list[list]:
    """One row per method: ``label``, method, the medians of ``keys`` in percent, epochs to the
    best member, fusion milliseconds."""
    rows = []
    for method in (*METHODS, "kd", "best member", "ensemble"):
        figures = [run[method] for run in runs]

        def pct(key: str, figures=figures) -> str:
            if key not in figures[0]:
                return ""
            return f"{100 * _median([f[key] for f in figures]):.2f}"

        to_best = seconds = ""
        if "to best" in figures[0]:
            value = _median([f["to best"] for f in figures])
            to_best = f"{value:.0f}" if value != float("inf") else f"> {epochs}"
        if "seconds" in figures[0]:
            seconds = f"{1000 * _median([f['seconds'] for f in figures]):.1f}"
        rows.append([*label, method, *(pct(key) for key in keys), to_best, seconds])
    return rows


def accuracy_table(quick: bool) -> str:
    _warm_up()
    rows = []
    lines = []
    for name, (base, seeds) in SETTINGS.items():
        seeds = 1 if quick else seeds
        train = dataclasses.replace(base, epochs=5) if quick else base
        for members in (2, 4):
            runs = [
                _one_ensemble(dataclasses.replace(train, members=members, seed=s), FINETUNE)
                for s in range(seeds)
            ]
            keys = ["fused", *(f"epoch {e}" for e in MILESTONES)]
            rows += _rows([name, members], runs, keys, FINETUNE.epochs)
        lines.append(
            f"{name}: {train.arch} members of width {train.width} ({train.epochs} epochs), "
            f"medians over seeds 0-{seeds - 1}"
        )
    header = ["data", "members", "method", "test % after fusion",
              *(f"test % after {e} epochs" for e in MILESTONES),
              "epochs to best member (validation)", "fusion ms"]  # fmt: skip
    return (
        f"{'; '.join(lines)}. Members: SGD {base.lr}, momentum {base.momentum}, batch "
        f"{base.batch}; fine-tuning (and kd) {FINETUNE.epochs} epochs with the same optimiser; "
        f"kd: temperature 4, alpha 0.9, student = the best member; one CPU thread. "
        f"Machine: {machine_line()}.\n\n{markdown_table(header, rows)}"
    )


def architecture_table(quick: bool) -> str:
    epochs = 2 if quick else ARCH_EPOCHS
    tune = FinetuneConfig(epochs=5)
    rows = []
    for arch in ARCHITECTURES:
        config = TrainConfig(dataset="digits", arch=arch, width=64, members=2, epochs=epochs)
        keys = ["fused", "reset", "epoch 1", "epoch 5"]
        rows += _rows([arch], [_one_ensemble(config, tune)], keys, tune.epochs)
    header = ["arch", "method", "test % after fusion", "test % after fusion + BN reset",
              "test % after 1 epochs", "test % after 5 epochs",
              "epochs to best member (validation)", "fusion ms"]  # fmt: skip
    return (
        f"Digits, 2 members of width 64 ({epochs} epochs, SGD 0.01, momentum 0.9, batch 32), "
        f"seed 0 only; fine-tuning (and kd) {tune.epochs} epochs, starting from the fused "
        "model as it is (BN reset: the batch-norm statistics recomputed in one pass over the "
        "training data, `train.reset_batch_norm`, measured on a copy); one CPU thread. "
        f"Machine: {machine_line()}.\n\n{markdown_table(header, rows)}"
    )


def shards_table(quick: bool) -> str:
    base = SETTINGS["digits"][0]
    base = dataclasses.replace(base, epochs=6) if quick else base
    seeds = 1 if quick else 3
    rows = []
    for members in (2, 4):
        runs = []
        for seed in range(seeds):
            config = dataclasses.replace(base, members=members, seed=seed, shards=True)
            split = load_split(config.dataset, config.validation, seed)
            trained = train_members(config, split, SerialComm())
            example = split.train.tensors[0][:8]
            run = {"best member": accuracy(trained.models[trained.best()], split.test),
                   "ensemble": accuracy(Ensemble(trained.models), split.test)}  # fmt: skip
            for method in ("nt", "avg"):
                fused = fuse(trained.models, example, method).model
                run[method] = accuracy(fused, split.test)
                torch.manual_seed(FINETUNE.seed)
                finetune(fused, split, dataclasses.replace(FINETUNE, epochs=5))
                run[f"{method} +5"] = accuracy(fused, split.test)
            model, _ = fedavg(config, split, config.epochs // FEDAVG_LOCAL_EPOCHS, SerialComm())
            run["fedavg"] = accuracy(model, split.test)
            runs.append(run)
        for label, key, tuned in (
            ("nt", "nt", "nt +5"),
            ("avg (independent initialisations)", "avg", "avg +5"),
            (f"FedAvg ({base.epochs // FEDAVG_LOCAL_EPOCHS} rounds)", "fedavg", None),
            ("best member", "best member", None),
            ("ensemble", "ensemble", None),
        ):
            tuned_text = f"{100 * _median([r[tuned] for r in runs]):.2f}" if tuned else ""
            rows.append([members, label, f"{100 * _median([r[key] for r in runs]):.2f}",
                         tuned_text])  # fmt: skip
    header = ["shards = members", "method", "test %", "test % after 5 epochs on all data"]
    return (
        f"Digits, MLP 64-64-64-10; member i trains {base.epochs} epochs on shard i only (disjoint "
        f"random shards of the training data); FedAvg: one shared initialisation, "
        f"{FEDAVG_LOCAL_EPOCHS} local epochs per shard per round, size-weighted averaging, the "
        f"same {base.epochs} epochs per shard in all; medians over seeds 0-{seeds - 1}; the "
        "last column fine-tunes on the union of the shards (which a federated setting does not "
        f"have). One CPU thread. Machine: {machine_line()}.\n\n{markdown_table(header, rows)}"
    )


def _status_kib(field: str) -> int:
    """A memory figure of this process from /proc/self/status, in KiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field}")


def _cost_child(size: str, members: int, method: str) -> None:
    """In a fresh process: fuse random models once, print time and peak memory growth as JSON.

    ``nt-wide`` is NT through the materialised wide model (``concatenate`` then ``prune``), the
    way the paper describes it; ``nt`` prunes block by block from the members.
    """
    from neuron_transplantation.graph import same_architecture, trace_network
    from neuron_transplantation.models import ModelSpec, build_model
    from neuron_transplantation.transplant import concatenate, prune

    torch.set_num_threads(1)
    _warm_up()  # imports and first-call costs outside the measurement
    models = []
    for seed in range(members):
        torch.manual_seed(seed)
        if size == "resnet18":
            import torchvision

            models.append(torchvision.models.resnet18(num_classes=10).eval())
        else:
            models.append(build_model(ModelSpec("mlp", (64,), 10, width=int(size))).eval())
    example = torch.randn(2, 3, 32, 32) if size == "resnet18" else torch.randn(8, 64)
    Path("/proc/self/clear_refs").write_text("5")  # reset the peak (VmHWM) to the current RSS
    before = _status_kib("VmRSS")
    began = time.perf_counter()
    with torch.no_grad():
        if method == "nt-wide":
            same_architecture(models)
            network = trace_network(models[0], example)
            prune(concatenate(models, network), network, models[0])
        else:
            fuse(models, example, method)
    seconds = time.perf_counter() - began
    peak = _status_kib("VmHWM")
    print(json.dumps({"seconds": seconds, "peak_growth_mib": (peak - before) / 1024}))


def cost_table(repeats: int) -> str:
    rows = []
    for width, members in COST_SIZES:
        for method in COST_METHODS:
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
    header = ["model", "members", "method", "fusion ms", "peak RSS growth MiB"]
    return (
        "Members with random weights: MLP 64-w-w-10 (model = w) and torchvision's ResNet18 "
        "(10 classes, traced on 32×32 images); fusion only (no data), one CPU thread; "
        "nt prunes block by block from the members, nt-wide builds the wide model first; each "
        f"figure the median of {repeats} fresh processes; peak RSS growth is the peak resident "
        "memory during the fusion (VmHWM, reset right before it) minus the resident memory "
        "before it. "
        f"Machine: {machine_line()}.\n\n{markdown_table(header, rows)}"
    )


TABLES = ("accuracy", "architectures", "shards", "cost")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one seed, few epochs, one repeat")
    parser.add_argument("--only", default=",".join(TABLES), help="tables, comma-separated")
    parser.add_argument("--cost-child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.cost_child:
        size, members, method = args.cost_child
        _cost_child(size, int(members), method)
        return
    torch.set_num_threads(1)
    makers = {
        "accuracy": lambda: accuracy_table(args.quick),
        "architectures": lambda: architecture_table(args.quick),
        "shards": lambda: shards_table(args.quick),
        "cost": lambda: cost_table(1 if args.quick else COST_REPEATS),
    }
    for name in args.only.split(","):
        if name not in makers:
            parser.error(f"unknown table {name!r}; choose from {', '.join(TABLES)}")
        text = makers[name]()
        replace_marked_block(HERE / "BENCHMARKS.md", name, text, append=True)
        print(text, flush=True)


if __name__ == "__main__":
    main()
