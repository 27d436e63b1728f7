"""The embedded default end to end: train 4 MLPs on the digits, fuse them by every method
(Neuron Transplantation in its three variants, optimal transport, weight matching, plain
averaging) and distil it, fine-tune each, and compare with the best member and the ensemble
(about 30 s on 2 CPU cores)."""

from __future__ import annotations

from pathlib import Path

from neuron_transplantation.__about__ import __version__
from neuron_transplantation.config import CompareConfig, FinetuneConfig, TrainConfig
from shared_hpc import (
    Recorder,
    UserError,
    get_comm,
    lock_folder,
    prepare_output_dir,
    set_torch_threads,
)

TRAIN = TrainConfig(dataset="digits", arch="mlp", members=4, epochs=30)
COMPARE = CompareConfig(
    variants=("one-shot", "iterative", "hierarchical"), finetune=FinetuneConfig(epochs=10)
)


def run_demo(output: Path) -> None:
    """Train, fuse, fine-tune and compare into ``output``: results.json, comparison.md, .png.

    Raises:
        UserError: ``output`` cannot be written, or matplotlib is missing.
    """
    prepare_output_dir(output)
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise UserError(
            "the demo needs matplotlib: pip install neuron-transplantation[demo]"
        ) from None
    from neuron_transplantation.cli import write_comparison
    from neuron_transplantation.compare import compare
    from neuron_transplantation.data import load_split
    from neuron_transplantation.train import train_members

    comm = get_comm()
    set_torch_threads(comm, threads=1)  # tiny models: more threads only spin
    split = load_split(TRAIN.dataset, TRAIN.validation, TRAIN.seed)
    with lock_folder(output, comm):
        with Recorder("neuron-transplantation", __version__, comm) as run:
            members = train_members(TRAIN, split, comm)
            models = comm.bcast(members.models, root=0)
            comparison = compare(models, members.validation, split, COMPARE)
        write_comparison(run, comparison, output, {"train": TRAIN, "compare": COMPARE})
