"""Helpers of benchmark scripts: the machine line, Markdown tables, generated blocks."""

from __future__ import annotations

import pytest

from shared_hpc.bench import machine_line, markdown_table, replace_marked_block
from shared_hpc.hardware import cpu_count, cpu_model


def test_machine_line_names_cpu_cores_and_load():
    line = machine_line()
    assert line.startswith(f"{cpu_model()}, {cpu_count()} logical CPUs")
    assert "Python" in line and "load average" in line


def test_markdown_table_escapes_pipes():
    assert markdown_table(["a", "b"], [[1, "x|y"]]) == "| a | b |\n|---|---|\n| 1 | x\\|y |\n"


def test_replace_marked_block_keeps_the_prose_around_it(tmp_path):
    path = tmp_path / "README.md"
    path.write_text("intro\n<!-- headline:start -->\nold\n<!-- headline:end -->\noutro\n")
    replace_marked_block(path, "headline", "new 1.5x\n")
    assert (
        path.read_text()
        == "intro\n<!-- headline:start -->\nnew 1.5x\n<!-- headline:end -->\noutro\n"
    )
    with pytest.raises(ValueError, match="lacks the markers <!-- other:start -->"):
        replace_marked_block(path, "other", "x")


def test_missing_block_is_appended_on_request(tmp_path):
    path = tmp_path / "BENCHMARKS.md"
    replace_marked_block(path, "skill", "table 1", append=True)
    replace_marked_block(path, "scaling", "table 2", append=True)
    replace_marked_block(path, "skill", "table 1b", append=True)
    assert path.read_text() == (
        "<!-- skill:start -->\ntable 1b\n<!-- skill:end -->\n\n"
        "<!-- scaling:start -->\ntable 2\n<!-- scaling:end -->\n"
    )
