"""Memory estimates refused up front, before a run allocates more than the node has."""

from __future__ import annotations

import pytest

from shared_hpc import UserError, available_memory, require_memory


def test_a_size_beyond_the_nodes_memory_is_refused_in_one_line():
    free = available_memory()
    assert free > 0
    require_memory(1024, "a small grid")
    with pytest.raises(UserError, match=r"a huge grid needs about .* GiB of memory, but only"):
        require_memory(free * 2, "a huge grid")
