"""Data-parallel training on two MPI ranks (run: mpiexec -n 2 python -m pytest -m mpi ...)."""

import json
import tempfile
from pathlib import Path

import pytest
import torch
from petnet.checkpoint import load_checkpoint
from petnet.cli import main
from petnet.config import PETNetConfig, TrainConfig
from petnet.train import train

CONFIG = PETNetConfig(train=TrainConfig(epochs=2, batch_size=128, max_steps_per_epoch=6))


@pytest.mark.mpi(ranks=2)
def test_two_ranks_train_one_model_and_resume(comm, train_singles):
    out = Path(comm.bcast(tempfile.mkdtemp() if comm.Get_rank() == 0 else None))
    result = train(train_singles, CONFIG, out, comm=comm)
    assert result.world_size == 2
    # DDP keeps the replicas identical: every rank validated the same model
    f1s = comm.allgather([h["val_f1"] for h in result.history])
    assert f1s[0] == f1s[1]
    if comm.Get_rank() == 0:
        uninterrupted = load_checkpoint(out / "last.pt")
        assert uninterrupted["world_size"] == 2 and len(uninterrupted["rng_states"]) == 2
        assert uninterrupted["history"] == result.history

    # a run stopped after its first epoch resumes on two ranks to the same weights
    class Stop(Exception):
        pass

    def stop(message):
        raise Stop(message)

    second = Path(comm.bcast(tempfile.mkdtemp() if comm.Get_rank() == 0 else None))
    with pytest.raises(Stop):
        train(train_singles, CONFIG, second, comm=comm, log=stop)
    comm.barrier()
    resumed = train(train_singles, CONFIG, second, resume=second / "last.pt", comm=comm)
    assert [h["val_f1"] for h in resumed.history] == [h["val_f1"] for h in result.history]
    if comm.Get_rank() == 0:
        a = uninterrupted["state_dict"]
        b = load_checkpoint(second / "last.pt")["state_dict"]
        assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.mpi(ranks=2)
def test_train_command_on_two_ranks_records_once_and_prints_on_rank_0(comm, train_singles, capsys):
    out = Path(comm.bcast(tempfile.mkdtemp() if comm.Get_rank() == 0 else None))
    data = out / "data.npz"
    if comm.Get_rank() == 0:
        train_singles.save(data)
    comm.barrier()
    argv = ["train", str(data), "--output", str(out / "run"), "--train.epochs", "1"]
    assert main([*argv, "--train.max-steps-per-epoch", "3", "--train.batch-size", "128"]) == 0
    printed = capsys.readouterr().out
    assert ("best validation F1" in printed) == (comm.Get_rank() == 0)
    comm.barrier()
    record = json.loads((out / "run" / "results.json").read_text())
    assert record["metrics"]["world_size"] == record["energy"]["ranks"] == 2
    assert record["config"]["petnet"]["train"]["epochs"] == 1
