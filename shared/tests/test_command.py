"""run_main: one line and an exit code for every way a command fails; no MPI job hangs."""

from __future__ import annotations

import argparse

import pytest

from shared_hpc import SerialComm, UserError, run_main, write_text_atomic


def _parser(handler) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tool")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("go").set_defaults(run=handler)
    return parser


def test_the_handlers_code_is_returned():
    assert run_main(_parser(lambda args: None), ["go"]) == 0
    assert run_main(_parser(lambda args: 3), ["go"]) == 3


def test_a_user_error_is_one_line_and_exit_2(capsys):
    def fail(args):
        raise UserError("data.nc lacks the variable 'z'")

    assert run_main(_parser(fail), ["go"], comm=SerialComm()) == 2
    captured = capsys.readouterr()
    assert captured.err == "tool go: error: data.nc lacks the variable 'z'\n"
    assert captured.out == ""


def test_ctrl_c_exits_130_and_says_what_was_saved(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)

    def interrupted(args):
        write_text_atomic(tmp_path / "run" / "ckpt" / "step-1.json", "{}")
        write_text_atomic(tmp_path / "run" / "log.json", "{}")
        raise KeyboardInterrupt

    assert run_main(_parser(interrupted), ["go"], comm=SerialComm()) == 130
    err = capsys.readouterr().err
    assert err.startswith("tool go: interrupted; 2 files under run are complete, the newest")
    assert err.strip().endswith("run/log.json")


def test_a_defect_keeps_its_traceback():
    def broken(args):
        return {}["missing"]

    with pytest.raises(KeyError, match="missing"):
        run_main(_parser(broken), ["go"])


def test_usage_errors_stay_argparse_errors():
    with pytest.raises(SystemExit) as stop:
        run_main(_parser(lambda args: 0), ["stop"])
    assert stop.value.code == 2


def test_other_ranks_stay_quiet(capsys):
    class Rank1(SerialComm):
        def Get_rank(self) -> int:
            return 1

    def fail(args):
        raise UserError("bad")

    assert run_main(_parser(fail), ["go"], comm=Rank1()) == 2
    assert capsys.readouterr().err == ""


def test_an_argument_that_hides_the_handler_is_named():
    parser = _parser(lambda args: 0)
    commands = parser._subparsers._group_actions[0]
    commands.choices["go"].add_argument("--run", default="dir")
    with pytest.raises(TypeError, match="dest is 'run'"):
        run_main(parser, ["go"])


def test_an_os_error_is_one_line_exit_1_and_names_what_was_saved(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)

    def disk_full(args):
        write_text_atomic(tmp_path / "run" / "epoch-1.json", "{}")
        raise OSError(28, "No space left on device", "run/epoch-2.json")

    assert run_main(_parser(disk_full), ["go"], comm=SerialComm()) == 1
    assert capsys.readouterr().err == (
        "tool go: error: No space left on device: 'run/epoch-2.json'; "
        "run/epoch-1.json is complete\n"
    )


def test_system_exit_inside_a_command_is_named_with_its_place(capsys):
    def user_function(args):
        raise SystemExit(3)

    assert run_main(_parser(user_function), ["go"], comm=SerialComm()) == 3
    err = capsys.readouterr().err
    assert err.startswith("tool go: stopped by SystemExit(3) at ")
    assert "test_command.py:" in err


_SCRIPT = """
import argparse, sys
from shared_hpc import UserError, get_comm, run_main

def handler(args):
    comm = get_comm()
    if args.fail in ("all", str(comm.Get_rank())):
        if args.kind == "user":
            raise UserError("bad band")
        {}["defect"]
    comm.allgather(1)  # the ranks that did not fail wait here for the others

parser = argparse.ArgumentParser(prog="tool")
parser.add_argument("fail")
parser.add_argument("kind")
parser.set_defaults(run=handler)
sys.exit(run_main(parser, sys.argv[1:], agreement_window_s=1.0))
"""


@pytest.mark.parametrize(
    ("fail", "kind", "code", "expected"),
    [
        ("1", "user", 2, "rank 1 of 2: tool: error: bad band"),
        ("0", "defect", 1, "rank 0 of 2: Traceback"),
        ("all", "user", 2, "tool: error: bad band\n"),
    ],
)
def test_a_failure_on_one_rank_ends_the_whole_job(fail, kind, code, expected, mpi_job):
    job = mpi_job(_SCRIPT, fail, kind, timeout=120)
    assert job.seconds < 60
    assert job.returncode == code, job.stderr
    assert expected in job.stderr
    if fail == "all":  # every rank refused the same input: one line, no abort
        assert job.stderr == expected


def test_an_uncaught_exception_in_a_script_ends_the_whole_job(mpi_job):
    job = mpi_job(
        "from shared_hpc import get_comm\n"
        "comm = get_comm()\n"
        "if comm.Get_rank() == 1:\n"
        "    raise RuntimeError('only on rank 1')\n"
        "comm.barrier()\n",
        timeout=120,
    )
    assert job.returncode != 0
    assert "RuntimeError: only on rank 1" in job.stderr
    assert "rank 1 of 2: uncaught RuntimeError; aborting the MPI job" in job.stderr
