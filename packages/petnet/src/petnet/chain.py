"""Vectorised "first come, then blocked for a while" selection along a time axis.

Both non-paralysable dead time and the single-window coincidence sorter pick events the same
way: the first event is taken, then the next taken event is the first one at least ``gap``
after the last *taken* one. That is sequential, but only inside clusters of events closer than
``gap`` to their predecessor, so the walk below loops over the longest cluster, not all events.
"""

from __future__ import annotations

import numpy as np


def chain_mask(
    time: np.ndarray, gap: float, group: np.ndarray | None = None, inclusive: bool = True
) -> np.ndarray:
    """Events taken by the chain rule, per group.

    Args:
        time: Event times, sorted within each group.
        gap: How long a taken event blocks the following ones.
        group: Group of each event (groups contiguous); ``None``: one group.
        inclusive: An event exactly ``gap`` after the last taken one is taken (dead time);
            otherwise it still counts as blocked (a coincidence window that includes its end).
    """
    n = len(time)
    taken = np.zeros(n, dtype=bool)
    if n == 0:
        return taken
    group = np.zeros(n, dtype=np.int64) if group is None else np.asarray(group)

    def free(i: np.ndarray, j: np.ndarray) -> np.ndarray:
        """Is event j no longer blocked by a taken event i?"""
        delta = time[j] - time[i]
        return (group[j] != group[i]) | (delta >= gap if inclusive else delta > gap)

    index = np.arange(n)
    starts = np.ones(n, dtype=bool)
    starts[1:] = free(index[:-1], index[1:])
    # first later event that a taken event i does not block
    following = np.full(n, n, dtype=np.int64)
    pending = index[:-1] if n > 1 else index[:0]
    step = 1
    while pending.size:
        j = pending + step
        inside = j < n
        done = np.zeros(pending.size, dtype=bool)
        done[~inside] = True
        done[inside] = free(pending[inside], j[inside])
        following[pending[done & inside]] = j[done & inside]
        pending = pending[~done]
        step += 1
    current = np.flatnonzero(starts)
    while current.size:
        taken[current] = True
        current = following[current]
        current = current[current < n]
        current = current[~starts[current]]  # a cluster start begins its own walk
    return taken
