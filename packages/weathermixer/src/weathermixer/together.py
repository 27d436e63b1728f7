"""Refusals every rank shares: a bad input that only some ranks see stops all of them together.

Each rank reads its own latitude band and may run on a node of its own, so NaNs in one band, or
a node with less memory, are found by one rank only. Raised there alone, the refusal would
leave the other ranks waiting in their next collective (until ``run_main`` aborts the job);
shared, every rank raises the same ``UserError`` and the job ends with one line and exit
code 2.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from shared_hpc import Comm, UserError

T = TypeVar("T")


def first_refusal(messages: Sequence[str | None]) -> UserError | None:
    """The refusal of the lowest rank that has one, naming that rank; ``None`` if none has.

    Args:
        messages: Every rank's refusal (``None`` where there is none), in rank order.
    """
    for rank, message in enumerate(messages):
        if message is not None:
            return UserError(f"{message} (found by rank {rank} of {len(messages)})")
    return None


def raise_together(comm: Comm, check: Callable[[], T]) -> T:
    """Run ``check`` on this rank; when it raises a ``UserError`` on any rank, raise on all.

    Collective over ``comm`` (one allgather of the messages).

    Args:
        comm: The ranks that share the outcome.
        check: The work that may refuse (a check, a read of this rank's data).

    Returns:
        What ``check`` returned.

    Raises:
        UserError: ``check`` raised one on some rank (the lowest such rank's message, naming
            it when there is more than one rank).
    """
    try:
        result, refusal = check(), None
    except UserError as error:
        if comm.Get_size() == 1:
            raise
        result, refusal = None, str(error)
    if comm.Get_size() > 1:
        error = first_refusal(comm.allgather(refusal))
        if error is not None:
            raise error
    return result  # type: ignore[return-value]  # set whenever no rank refused
