"""Atomic writes: complete or absent, readable by the user's group, remembered for Ctrl-C."""

from __future__ import annotations

import json
import math
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from shared_hpc import UserError, atomic_path, lock_folder, write_json_atomic, write_text_atomic
from shared_hpc.files import file_mode, saved_paths


def test_atomic_write_replaces_content_and_converts_values(tmp_path):
    path = tmp_path / "a.json"
    write_json_atomic(path, {"x": np.int64(3), "p": Path("/d"), "inf": math.inf})
    assert json.loads(path.read_text()) == {"x": 3, "p": "/d", "inf": None}
    write_text_atomic(path, "second\n")
    assert path.read_text() == "second\n"
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]  # no temporary file left
    with pytest.raises(TypeError, match="cannot store object"):
        write_json_atomic(path, {"bad": object()})
    assert path.read_text() == "second\n"  # a failed write changes nothing
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]
    assert saved_paths()[-2:] == [path, path]


def test_any_writer_through_atomic_path(tmp_path):
    target = tmp_path / "deep" / "arrays.npz"
    with atomic_path(target) as tmp:
        assert tmp.parent == target.parent and tmp != target
        with open(tmp, "wb") as handle:  # numpy would append .npz to a bare name
            np.savez(handle, x=np.arange(4))
    assert np.load(target)["x"].tolist() == [0, 1, 2, 3]
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("the writer failed")
    assert np.load(target)["x"].tolist() == [0, 1, 2, 3]
    assert [p.name for p in target.parent.iterdir()] == ["arrays.npz"]


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o027, 0o640), (0o077, 0o600)])
def test_files_get_the_mode_the_umask_gives(tmp_path, umask, mode):
    """A new process with that umask, as a user's shell would start one (0600 was mkstemp's)."""
    script = (
        "import os, sys\n"
        f"os.umask({umask})\n"
        "from shared_hpc import write_text_atomic\n"
        "from shared_hpc.files import file_mode\n"
        "write_text_atomic(sys.argv[1], 'x')\n"
        "print(oct(file_mode()))\n"
    )
    target = tmp_path / "results.json"
    out = subprocess.run(
        [sys.executable, "-c", script, str(target)], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == oct(mode)
    assert stat.S_IMODE(target.stat().st_mode) == mode


def test_file_mode_reads_the_umask_without_changing_it():
    import os

    before = os.umask(0o022)
    os.umask(before)
    assert file_mode() == 0o666 & ~before
    after = os.umask(before)
    assert after == before


def test_crash_in_the_middle_of_a_write_leaves_the_old_file_whole(tmp_path):
    """The writer is killed (SIGKILL) after half the data reached the temporary file."""
    target = tmp_path / "results.json"
    write_json_atomic(target, {"generation": 1})
    script = f"""
import os, signal, pathlib
from shared_hpc import write_json_atomic

def dying_write(self, text, encoding=None):
    with open(self, "w") as handle:
        handle.write(text[: len(text) // 2])
        handle.flush()
        os.fsync(handle.fileno())
    os.kill(os.getpid(), signal.SIGKILL)

pathlib.Path.write_text = dying_write
write_json_atomic({str(target)!r}, {{"generation": 2, "payload": "x" * 100000}})
"""
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=60)
    assert proc.returncode == -9  # really killed mid-write
    assert json.loads(target.read_text()) == {"generation": 1}
    leftovers = [p for p in tmp_path.iterdir() if p != target]
    assert len(leftovers) == 1 and leftovers[0].name.startswith(".results.json.")
    assert 0 < leftovers[0].stat().st_size < 100000  # the half-written data never became the file


def test_output_paths_are_checked_before_work(tmp_path):
    from shared_hpc import UserError, check_output_file, prepare_output_dir

    assert prepare_output_dir(tmp_path / "a" / "b").is_dir()
    afile = tmp_path / "results.json"
    afile.write_text("{}")
    with pytest.raises(UserError, match="is a file, not a folder"):
        prepare_output_dir(afile)
    with pytest.raises(UserError, match="cannot create the folder"):
        prepare_output_dir(afile / "sub")
    with pytest.raises(UserError, match="is a folder, not a file"):
        check_output_file(tmp_path)
    assert check_output_file(tmp_path / "new" / "data.nc").parent.is_dir()


def test_a_planted_symlink_is_never_followed(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    for guess in (".a.json.tmp", ".a.json.partial", "a.json.tmp"):
        (tmp_path / guess).symlink_to(victim)
    write_text_atomic(tmp_path / "a.json", "{}\n")
    assert victim.read_text() == "precious\n"
    assert (tmp_path / "a.json").read_text() == "{}\n"


def test_a_second_run_on_a_locked_folder_is_refused(tmp_path):
    run = tmp_path / "run"
    with lock_folder(run) as folder:
        assert folder == run and (run / ".lock").read_text().startswith("pid ")
        with (
            pytest.raises(UserError, match=r"in use by another run \(pid \d+ on "),
            lock_folder(run),
        ):
            pass
        other = subprocess.run(
            [
                sys.executable,
                "-c",
                f"from shared_hpc import lock_folder\nwith lock_folder({str(run)!r}): pass",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        assert other.returncode == 1 and "is in use by another run" in other.stderr
    with lock_folder(run):  # released when the block ends
        pass


def test_a_lock_dies_with_its_process(tmp_path):
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\nfrom shared_hpc import lock_folder\n"
            f"with lock_folder({str(tmp_path)!r}):\n"
            "    print('locked', flush=True)\n    time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline() == "locked\n"
    with pytest.raises(UserError, match=f"pid {holder.pid} on"), lock_folder(tmp_path):
        pass
    holder.kill()
    holder.wait()
    with lock_folder(tmp_path):  # kill -9 released it
        pass
