"""run_main: one line and exit 2 for a user error, 130 and what was saved for Ctrl-C."""

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
