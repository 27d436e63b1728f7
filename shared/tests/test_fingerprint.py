"""Fingerprints: a resume with other data or another loss is refused, a moved file is not."""

from __future__ import annotations

import shutil

import pytest

from shared_hpc import UserError, check_resume, file_fingerprint
from shared_hpc import fingerprint as fingerprint_module


def test_same_content_elsewhere_is_the_same_data(tmp_path):
    first = tmp_path / "a.nc"
    first.write_bytes(b"x" * 1000)
    moved = tmp_path / "scratch" / "a.nc"
    moved.parent.mkdir()
    shutil.copy(first, moved)
    check_resume("data", file_fingerprint(first), file_fingerprint(moved))


def test_other_content_is_refused_naming_both_unless_forced(tmp_path):
    old, new = tmp_path / "old.h5", tmp_path / "new.h5"
    old.write_bytes(b"a" * 100)
    new.write_bytes(b"b" * 100)
    with pytest.raises(UserError) as refused:
        check_resume("data", file_fingerprint(old), file_fingerprint(new))
    message = str(refused.value)
    assert "old.h5" in message and "new.h5" in message and "--force-resume" in message
    check_resume("data", file_fingerprint(old), file_fingerprint(new), force=True)
    check_resume("data", None, file_fingerprint(new))  # a checkpoint of an older version


def test_a_named_loss_is_compared_by_name():
    check_resume("loss", {"name": "sphere"}, {"name": "sphere"})
    with pytest.raises(UserError, match="loss sphere, this run has rastrigin"):
        check_resume("loss", {"name": "sphere"}, {"name": "rastrigin"})


def test_a_large_file_is_hashed_by_head_and_tail(tmp_path, monkeypatch):
    monkeypatch.setattr(fingerprint_module, "_WHOLE_LIMIT", 100)
    monkeypatch.setattr(fingerprint_module, "_SAMPLE", 10)
    path = tmp_path / "big.bin"
    path.write_bytes(bytes(range(256)) * 2)
    before = file_fingerprint(path)
    assert before["sampled"] is True
    data = bytearray(path.read_bytes())
    data[-1] ^= 1
    path.write_bytes(bytes(data))
    assert file_fingerprint(path)["sha256"] != before["sha256"]
