"""Write BENCHMARKS.md: NT against OT fusion, weight matching, weight averaging and knowledge
distillation, members trained on shards against FedAvg, and the cost of fusion, in one run.

    python benchmarks/run.py            # every table, about 20 minutes on 2 shared cores
    python benchmarks/run.py --quick    # one seed, fewer epochs, to check the script
    python benchmarks/run.py --only accuracy,shards   # some tables
    python benchmarks/run.py --render   # rebuild the blocks from benchmarks/results/*.json

Every table's block ends with the issue's targets judged from the runs it just measured ("met"
or "MISSED", with the figures) and the findings that follow from them; the raw measurements
of each table are kept in ``benchmarks/results/<table>.json``, so ``--render`` rewrites the
text without measuring again. ``--quick`` writes neither unless ``--markdown`` and
``--results`` are given.

Accuracy: on the digits (MLP) and MNIST-1D (1-D CNN), for every seed and ensemble size, the
members are trained once and every method fuses the same members; each fused model is
fine-tuned with the same settings (kd: distilled with them, starting from the best member,
its temperature and alpha chosen on validation) and
its test accuracy is read at fixed epochs (never used to choose anything); "epochs to best
member" is the first epoch at which validation accuracy reaches the best member's. Medians
over the seeds. Architectures: the same on the digits for LeNet with batch norm, VGG11-style
with batch norm, ResNet18-style and ViT members, two seeds, fewer epochs; for the ViT also a
probe of what its single pruned layer norm costs.

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
import torch.nn.functional as F
from neuron_transplantation.config import FinetuneConfig, TrainConfig
from neuron_transplantation.data import load_split
from neuron_transplantation.distill import distill
from neuron_transplantation.federated import fedavg
from neuron_transplantation.fusion import Ensemble, fuse
from neuron_transplantation.graph import trace_network
from neuron_transplantation.train import accuracy, finetune, reset_batch_norm, train_members
from neuron_transplantation.transplant import transplant
from torch import nn

from shared_hpc import SerialComm
from shared_hpc.bench import machine_line, markdown_table, replace_marked_block
from shared_hpc.files import write_json_atomic

HERE = Path(__file__).resolve().parent.parent
RESULTS = HERE / "benchmarks" / "results"
DATA_NAMES = {"digits": "the digits (MLP)", "mnist1d": "MNIST-1D (1-D CNN)"}
METHODS = ("nt", "ot", "wm", "avg")
MILESTONES = (1, 5, 10)
SETTINGS = {  # name: (members' settings, seeds)
    "digits": (TrainConfig(dataset="digits", arch="mlp", width=64, depth=2, epochs=30), 5),
    "mnist1d": (TrainConfig(dataset="mnist1d", arch="cnn1d", width=64, epochs=30), 3),
}
ARCHITECTURES = ("lenet-bn", "vgg-bn", "resnet", "vit")
ARCH_EPOCHS = 10
ARCH_SEEDS = 2
ARCH_LR = {"vit": 0.05}
"""Learning rates other than 0.01 (members and fine-tuning): the ViT learns too slowly at 0.01."""
ARCH_MEMBER_EPOCHS = {"vit": 20}
"""Member epochs other than ``ARCH_EPOCHS``: with SGD the ViT needs 20 to pass 85 %."""
ARCH_KD_GRID = ((4.0, 0.9), (2.0, 0.5))
KD_GRID = tuple((t, a) for t in (2.0, 4.0, 8.0) for a in (0.5, 0.9))
"""Distillation's (temperature, alpha), chosen per ensemble by validation accuracy."""
FEDAVG_LOCAL_EPOCHS = (1, 3, 10, 30)
"""FedAvg's local epochs per round (rounds = epochs / local epochs), chosen on validation."""
SHARD_PARTITIONS = (("random", 0.0), ("Dirichlet 0.5", 0.5))
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


def _to_best(curve: list[float], target: float) -> int | None:
    """The first epoch whose validation accuracy reaches ``target``; None if none does."""
    reached = [e for e, v in enumerate(curve) if v >= target]
    return reached[0] if reached else None


def _median_epochs(figures: list[dict]) -> float:
    """Median of the "to best" epochs, never reaching it counted as infinitely many."""
    return _median([float("inf") if f["to best"] is None else f["to best"] for f in figures])


def _epochs_text(value: float, budget: int) -> str:
    return f"{value:.0f}" if value != float("inf") else f"> {budget}"


class _MemberLayerNorm(nn.Module):
    """Probe, not a fusion method: a pruned layer norm that normalises each member's kept
    channels on their own, as the wide model did; comparing it with NT's single layer norm
    measures what mixing the members' channels in one layer norm costs."""

    def __init__(self, norm: nn.LayerNorm, sizes: list[int]) -> None:
        super().__init__()
        self.norm, self.sizes = norm, sizes

    def forward(self, x):
        parts = x.split(self.sizes, -1)
        normed = [F.layer_norm(p, (p.shape[-1],), eps=self.norm.eps) for p in parts]
        return torch.cat(normed, -1) * self.norm.weight + self.norm.bias


def _member_layer_norms(members: list[nn.Module], example: torch.Tensor) -> nn.Module:
    """NT's fused model with every layer norm replaced by ``_MemberLayerNorm``."""
    network = trace_network(members[0], example)
    result = transplant(members, network)
    model = copy.deepcopy(result.model)
    for norm in network.norms:
        module = model.get_submodule(norm.name)
        width = module.normalized_shape[0]
        counts = torch.bincount(result.kept[norm.group] // width, minlength=len(members))
        probe = _MemberLayerNorm(module, [int(c) for c in counts if c > 0])
        parent, _, leaf = norm.name.rpartition(".")
        setattr(model.get_submodule(parent) if parent else model, leaf, probe)
    return model


def _one_ensemble(
    config: TrainConfig, finetune_config: FinetuneConfig, kd_grid=KD_GRID
) -> dict[str, dict]:
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
    tried = []
    if any(isinstance(m, nn.LayerNorm) for m in trained.models[0].modules()):
        probe = _member_layer_norms(trained.models, example)
        out["nt, layer norms per member"] = {"fused": accuracy(probe, split.test)}
    for temperature, alpha in kd_grid:  # tuned on validation, test read at the milestones
        student = copy.deepcopy(trained.models[best])
        row = {"fused": out["best member"]["fused"], "setting": [temperature, alpha]}
        torch.manual_seed(finetune_config.seed)
        curve = distill(trained.models, student, split, finetune_config, temperature, alpha,
                        progress=_milestones(student, split, row))  # fmt: skip
        row["to best"] = _to_best(curve, target)
        tried.append((curve[-1], -len(tried), row))
    row = max(tried, key=lambda t: t[:2])[2]
    out["kd"] = row
    return out


def _rows(label: list, runs: list[dict], keys: list[str], epochs: int) -> list[list]:
    """One row per method: ``label``, method, the medians of ``keys`` in percent, epochs to the
    best member, fusion milliseconds."""
    rows = []
    probes = [m for m in runs[0] if m not in (*METHODS, "kd", "best member", "ensemble")]
    for method in (*METHODS, *probes, "kd", "best member", "ensemble"):
        figures = [run[method] for run in runs]

        def pct(key: str, figures=figures) -> str:
            if key not in figures[0]:
                return ""
            return f"{100 * _median([f[key] for f in figures]):.2f}"

        to_best = seconds = ""
        if "to best" in figures[0]:
            to_best = _epochs_text(_median_epochs(figures), epochs)
        if "seconds" in figures[0]:
            seconds = f"{1000 * _median([f['seconds'] for f in figures]):.1f}"
        rows.append([*label, method, *(pct(key) for key in keys), to_best, seconds])
    return rows


def _grid_text() -> str:
    temperatures = sorted({t for t, _ in KD_GRID})
    alphas = sorted({a for _, a in KD_GRID})
    return f"temperature {temperatures} × alpha {alphas}"


def _chosen(settings: list[tuple[float, float]]) -> str:
    """How often each (temperature, alpha) was chosen."""
    settings = [tuple(s) for s in settings]
    counts = {s: settings.count(s) for s in sorted(set(settings))}
    return ", ".join(f"T {t:g}, alpha {a:g} ({n}×)" for (t, a), n in counts.items())


def _verdict(met: bool, target: str) -> str:
    """One bullet: the target as the issue states it, whether the figures meet it."""
    return f"- {'met' if met else 'MISSED'}: {target}"


def _compare(value: float, other: float) -> str:
    return "ahead of" if value > other else "level with" if value == other else "behind"


def _percent(runs: list[dict], method: str, key: str) -> float | None:
    """The median over the seeds of one accuracy, in percent as shown (two decimals, so that
    figures shown equal compare equal); None where it was not measured."""
    values = [run[method][key] for run in runs if key in run[method]]
    return round(100 * _median(values), 2) if values else None


def _place(figures: dict[str, float]) -> str:
    """NT's place among the fusion methods in ``figures`` (ties share the better place)."""
    above = sum(v > figures["nt"] for m, v in figures.items() if m != "nt")
    listed = ", ".join(f"{m} {v:.2f}" for m, v in figures.items())
    return f"NT is number {above + 1} of {len(figures)} fusion methods ({listed} %)"


def _fusion_verdicts(where: str, runs: list[dict], final: int) -> list[str]:
    """The issue's targets and the findings for one ensemble setting, from its runs."""
    nt, best = _percent(runs, "nt", f"epoch {final}"), _percent(runs, "best member", "fused")
    nt_epochs = _median_epochs([run["nt"] for run in runs])
    ot_epochs = _median_epochs([run["ot"] for run in runs])
    pace = (
        "NT needs no more fine-tuning than OT to reach the best member's validation accuracy "
        f"on {where}"
    )
    if min(nt_epochs, ot_epochs) == float("inf"):  # nothing to compare within the budget
        pace = f"- open: {pace} (neither reached it within {final} epochs)"
    else:
        pace = _verdict(
            nt_epochs <= ot_epochs,
            f"{pace} ({_epochs_text(nt_epochs, final)} vs {_epochs_text(ot_epochs, final)} epochs)",
        )
    lines = [
        _verdict(nt > best, f"NT after {final} epochs of fine-tuning beats the best member on "
                 f"{where} ({nt:.2f} vs {best:.2f} %)"),
        pace,
        f"- right after fusion on {where}: "
        + _place({m: _percent(runs, m, "fused") for m in METHODS}),
    ]  # fmt: skip
    if "reset" in runs[0]["nt"]:
        reset = {m: _percent(runs, m, "reset") for m in METHODS}
        lines.append(f"- after the batch-norm reset on {where}: {_place(reset)}")
    kd = _percent(runs, "kd", f"epoch {final}")
    lines.append(
        f"- tuned kd after {final} epochs is {_compare(kd, nt)} NT on {where} "
        f"({kd:.2f} vs {nt:.2f} %)"
    )
    if "nt, layer norms per member" in runs[0]:
        probe = _percent(runs, "nt, layer norms per member", "fused")
        nt_fused = _percent(runs, "nt", "fused")
        lines.append(
            f"- probe on {where}: normalising each member's kept channels on their own "
            f"instead of NT's single pruned layer norm gives {probe:.2f} % right after "
            f"fusion against NT's {nt_fused:.2f} % (ensemble "
            f"{_percent(runs, 'ensemble', 'fused'):.2f} %)"
        )
    return lines


def _block(description: str, table: str, verdicts: list[str]) -> str:
    """A table's marked block: its settings and machine, the table, the verdicts below it."""
    return (
        f"{description}\n\n{table.rstrip()}\n\nThe issue's targets and findings, judged by "
        "the script from the medians above:\n\n" + "\n".join(verdicts)
    )


def accuracy_measure(quick: bool) -> dict:
    _warm_up()
    groups = []
    kd = []
    lines = []
    for name, (base, seeds) in SETTINGS.items():
        seeds = 1 if quick else seeds
        train = dataclasses.replace(base, epochs=5) if quick else base
        for members in (2, 4):
            runs = [
                _one_ensemble(dataclasses.replace(train, members=members, seed=s), FINETUNE)
                for s in range(seeds)
            ]
            kd += [run["kd"]["setting"] for run in runs]
            groups.append({"data": name, "members": members, "runs": runs})
        lines.append(
            f"{name}: {train.arch} members of width {train.width} ({train.epochs} epochs), "
            f"medians over seeds 0-{seeds - 1}"
        )
    description = (
        f"{'; '.join(lines)}. Members: SGD {base.lr}, momentum {base.momentum}, batch "
        f"{base.batch}; fine-tuning (and kd) {FINETUNE.epochs} epochs with the same optimiser; "
        f"kd: student = the best member, temperature and alpha chosen per ensemble by the "
        f"validation accuracy after the budget from {_grid_text()}; chosen: {_chosen(kd)}; "
        f"one CPU thread. Machine: {machine_line()}."
    )
    return {"description": description, "milestones": MILESTONES, "groups": groups}


def accuracy_render(data: dict) -> str:
    milestones = data["milestones"]
    keys = ["fused", *(f"epoch {e}" for e in milestones)]
    rows, verdicts = [], []
    for group in data["groups"]:
        label = [group["data"], group["members"]]
        rows += _rows(label, group["runs"], keys, milestones[-1])
        where = f"{DATA_NAMES[group['data']]}, {group['members']} members"
        verdicts += _fusion_verdicts(where, group["runs"], milestones[-1])
    header = ["data", "members", "method", "test % after fusion",
              *(f"test % after {e} epochs" for e in milestones),
              "epochs to best member (validation)", "fusion ms"]  # fmt: skip
    return _block(data["description"], markdown_table(header, rows), verdicts)


def architectures_measure(quick: bool) -> dict:
    epochs = 2 if quick else ARCH_EPOCHS
    seeds = 1 if quick else ARCH_SEEDS
    groups = []
    kd = []
    for arch in ARCHITECTURES:
        lr = ARCH_LR.get(arch, 0.01)
        tune = FinetuneConfig(epochs=5, lr=lr)
        runs = []
        for seed in range(seeds):
            member_epochs = epochs if quick else ARCH_MEMBER_EPOCHS.get(arch, epochs)
            config = TrainConfig(dataset="digits", arch=arch, width=64, members=2,
                                 epochs=member_epochs, lr=lr, seed=seed)  # fmt: skip
            runs.append(_one_ensemble(config, tune, ARCH_KD_GRID))
        kd += [run["kd"]["setting"] for run in runs]
        groups.append({"arch": arch, "finetune epochs": tune.epochs, "runs": runs})
    rates = ", ".join(f"{a} {r:g}" for a, r in ARCH_LR.items())
    description = (
        f"Digits, 2 members of width 64 ({epochs} epochs "
        f"({', '.join(f'{a} {e}' for a, e in ARCH_MEMBER_EPOCHS.items())}), SGD 0.01 "
        f"({rates}), momentum 0.9, "
        f"batch 32; the vit: 2 blocks, 4 heads, 2×2 patches), medians over seeds "
        f"0-{seeds - 1}; fine-tuning (and kd) 5 epochs with the members' learning rate, "
        "starting from the fused model as it is (BN reset: the batch-norm statistics "
        "recomputed in one pass over the training data, `train.reset_batch_norm`, measured on "
        "a copy); kd: temperature and alpha chosen on validation from "
        f'{[list(g) for g in ARCH_KD_GRID]} (chosen: {_chosen(kd)}). "nt, layer norms per '
        "member\" is a probe, not a method: NT's fused ViT with every layer norm normalising "
        "each member's kept channels on their own (as the exact wide model does) instead of "
        "all kept channels together; the difference to nt is what the single pruned layer "
        f"norm costs. One CPU thread. Machine: {machine_line()}."
    )
    return {"description": description, "groups": groups}


def architectures_render(data: dict) -> str:
    keys = ["fused", "reset", "epoch 1", "epoch 5"]
    rows, verdicts = [], []
    for group in data["groups"]:
        epochs = group["finetune epochs"]
        rows += _rows([group["arch"]], group["runs"], keys, epochs)
        where = f"the digits, {group['arch']}, 2 members"
        verdicts += _fusion_verdicts(where, group["runs"], epochs)
    header = ["arch", "method", "test % after fusion", "test % after fusion + BN reset",
              "test % after 1 epochs", "test % after 5 epochs",
              "epochs to best member (validation)", "fusion ms"]  # fmt: skip
    return _block(data["description"], markdown_table(header, rows), verdicts)


def _fedavg_tuned(config: TrainConfig, split) -> tuple[float, int]:
    """FedAvg with the local epochs of ``FEDAVG_LOCAL_EPOCHS`` that reach the best validation
    accuracy: its test accuracy and those local epochs."""
    tried = []
    for local in FEDAVG_LOCAL_EPOCHS:
        if config.epochs % local:
            continue
        model, curve = fedavg(config, split, config.epochs // local, SerialComm())
        tried.append((curve[-1], -local, accuracy(model, split.test), local))
    best = max(tried)
    return best[2], best[3]


def _shard_run(config: TrainConfig) -> dict[str, float]:
    """Members trained on the shards of ``config``, fused; FedAvg tuned on the same shards."""
    split = load_split(config.dataset, config.validation, config.seed)
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
    run["fedavg"], run["local"] = _fedavg_tuned(config, split)
    return run


def shards_measure(quick: bool) -> dict:
    base = SETTINGS["digits"][0]
    base = dataclasses.replace(base, epochs=6) if quick else base
    seeds = 1 if quick else 3
    groups = []
    for partition, dirichlet in SHARD_PARTITIONS:
        for members in (2, 4):
            runs = [
                _shard_run(dataclasses.replace(
                    base, members=members, seed=seed, shards=True, dirichlet=dirichlet
                ))
                for seed in range(seeds)
            ]  # fmt: skip
            groups.append({"partition": partition, "members": members, "runs": runs})
    description = (
        f"Digits, MLP 64-64-64-10; member i trains {base.epochs} epochs on shard i only "
        "(disjoint shards of the training data: random and equally large, or skewed by class "
        "with per-class shares drawn from Dirichlet(0.5), `--dirichlet 0.5`); FedAvg: one "
        "shared initialisation, size-weighted averaging, the same "
        f"{base.epochs} epochs per shard in all, local epochs per round chosen per seed from "
        f"{list(FEDAVG_LOCAL_EPOCHS)} by the validation accuracy of the final model (listed per "
        f"seed); medians over seeds 0-{seeds - 1}; the last column fine-tunes on the union of "
        "the shards (which a federated setting does not have). One CPU thread. "
        f"Machine: {machine_line()}."
    )
    return {"description": description, "groups": groups}


def shards_render(data: dict) -> str:
    rows, verdicts = [], []
    for group in data["groups"]:
        runs, partition, members = group["runs"], group["partition"], group["members"]
        locals_ = ", ".join(str(r["local"]) for r in runs)
        for label, key, tuned in (
            ("nt", "nt", "nt +5"),
            ("avg (independent initialisations)", "avg", "avg +5"),
            (f"FedAvg (local epochs chosen: {locals_})", "fedavg", None),
            ("best member", "best member", None),
            ("ensemble", "ensemble", None),
        ):
            median = f"{100 * _median([r[key] for r in runs]):.2f}"
            tuned_text = f"{100 * _median([r[tuned] for r in runs]):.2f}" if tuned else ""
            rows.append([partition, members, label, median, tuned_text])
        nt, fed, best = (round(100 * _median([r[k] for r in runs]), 2)
                         for k in ("nt", "fedavg", "best member"))  # fmt: skip
        where = f"{members} {partition} shards"
        verdicts += [
            f"- NT is {_compare(nt, fed)} FedAvg with tuned local epochs on {where} "
            f"({nt:.2f} vs {fed:.2f} %)",
            f"- NT is {_compare(nt, best)} the best member on {where} ({nt:.2f} vs {best:.2f} %)",
        ]
    header = ["shards", "shards = members", "method", "test %",
              "test % after 5 epochs on all data"]  # fmt: skip
    return _block(data["description"], markdown_table(header, rows), verdicts)


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
    from neuron_transplantation.graph import same_architecture
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


def cost_measure(quick: bool) -> dict:
    repeats = 1 if quick else COST_REPEATS
    groups = []
    for width, members in COST_SIZES:
        for method in COST_METHODS:
            runs = []
            for _ in range(repeats):
                child = subprocess.run(
                    [sys.executable, __file__, "--cost-child", str(width), str(members), method],
                    capture_output=True, text=True, check=True,
                )  # fmt: skip
                runs.append(json.loads(child.stdout.strip().splitlines()[-1]))
            groups.append({"model": width, "members": members, "method": method, "runs": runs})
    description = (
        "Members with random weights: MLP 64-w-w-10 (model = w) and torchvision's ResNet18 "
        "(10 classes, traced on 32×32 images); fusion only (no data), one CPU thread; "
        "nt prunes block by block from the members, nt-wide builds the wide model first; each "
        f"figure the median of {repeats} fresh processes; peak RSS growth is the peak resident "
        "memory during the fusion (VmHWM, reset right before it) minus the resident memory "
        f"before it. Machine: {machine_line()}."
    )
    return {"description": description, "groups": groups}


def cost_render(data: dict) -> str:
    rows = []
    cost = {}  # (model, members) -> method -> (ms, MiB)
    for group in data["groups"]:
        runs = group["runs"]
        ms = 1000 * _median([r["seconds"] for r in runs])
        mib = _median([r["peak_growth_mib"] for r in runs])
        rows.append([group["model"], group["members"], group["method"], f"{ms:.1f}",
                     f"{mib:.1f}"])  # fmt: skip
        cost.setdefault((group["model"], group["members"]), {})[group["method"]] = (ms, mib)
    verdicts = []
    for (model, members), methods in cost.items():
        (nt_ms, nt_mib), (ot_ms, ot_mib) = methods["nt"], methods["ot"]
        where = f"{'MLP width ' if model.isdigit() else 'torchvision '}{model}, {members} members"
        verdicts.append(_verdict(
            ot_ms >= 10 * nt_ms and nt_mib < ot_mib,
            f"NT fuses at least 10× faster than OT with less memory on {where} "
            f"({ot_ms / nt_ms:.1f}× faster: {nt_ms:.1f} vs {ot_ms:.1f} ms; "
            f"{nt_mib:.1f} vs {ot_mib:.1f} MiB)",
        ))  # fmt: skip
        if "nt-wide" in methods:
            wide_mib = methods["nt-wide"][1]
            verdicts.append(
                f"- NT through the wide model (nt-wide, the paper's route) uses "
                f"{'less' if wide_mib < ot_mib else 'no less'} memory than OT on {where} "
                f"({wide_mib:.1f} vs {ot_mib:.1f} MiB)"
            )
    header = ["model", "members", "method", "fusion ms", "peak RSS growth MiB"]
    return _block(data["description"], markdown_table(header, rows), verdicts)


SECTIONS = {
    "accuracy": (accuracy_measure, accuracy_render),
    "architectures": (architectures_measure, architectures_render),
    "shards": (shards_measure, shards_render),
    "cost": (cost_measure, cost_render),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one seed, few epochs, one repeat")
    parser.add_argument("--only", default=",".join(SECTIONS), help="tables, comma-separated")
    parser.add_argument(
        "--render", action="store_true", help="rebuild the blocks from the results, no runs"
    )
    parser.add_argument("--markdown", type=Path, help="default: BENCHMARKS.md (not with --quick)")
    parser.add_argument("--results", type=Path, help="default: benchmarks/results (not --quick)")
    parser.add_argument("--cost-child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.cost_child:
        size, members, method = args.cost_child
        _cost_child(size, int(members), method)
        return
    names = args.only.split(",")
    for name in names:
        if name not in SECTIONS:
            parser.error(f"unknown table {name!r}; choose from {', '.join(SECTIONS)}")
    markdown = args.markdown or (None if args.quick else HERE / "BENCHMARKS.md")
    results = args.results or (None if args.quick else RESULTS)
    if args.render:
        if args.quick or results is None:
            parser.error("--render reads the results of full runs; --quick is not for it")
        for name in names:
            if not (results / f"{name}.json").is_file():
                parser.error(f"no results for {name!r} in {results}: run that table first")
    torch.set_num_threads(1)
    for name in names:
        measure, render = SECTIONS[name]
        path = results / f"{name}.json" if results else None
        if args.render:
            data = json.loads(path.read_text())
        else:
            data = measure(args.quick)
            if path:  # kept before the text is built, so a failure there loses no run
                write_json_atomic(path, data)
        text = render(data)
        if markdown:
            replace_marked_block(markdown, name, text, append=True)
        print(text, flush=True)


if __name__ == "__main__":
    main()
