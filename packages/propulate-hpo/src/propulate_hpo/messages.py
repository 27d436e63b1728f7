"""Wire format: individuals travel as flat float64 arrays, never as pickled objects.

One row is ``HEADER`` numbers, the objectives of a multi-objective search, the genes, then an
optional loss curve (for the early-stopping surrogate). Integers up to 2**53 are exact in
float64, which covers worker and generation counters of any run.
"""

from __future__ import annotations

import numpy as np

from propulate_hpo.population import Row

TAG_RESULT = 11  # an evaluated individual, to the island's other workers
TAG_MIGRANTS = 12  # emigrants (migration) or copies (pollination), to another island
TAG_DEACTIVATE = 13  # (worker, generation, version) triples to deactivate on the island
TAG_IN_FLIGHT = 14  # genes of a candidate a worker starts (so its peers do not breed it too)

HEADER = (
    10  # worker, generation, island, loss, status, t_start, duration, version, current, n_curve
)


def encode_row(row: Row, curve: np.ndarray | None = None) -> np.ndarray:
    """One individual as a message.

    Args:
        row: The individual.
        curve: Its loss curve, for the early-stopping surrogate of the receiver.
    """
    n_curve = 0 if curve is None else len(curve)
    m = 0 if row.objectives is None else len(row.objectives)
    dim = len(row.genes)
    out = np.empty(HEADER + m + dim + n_curve)
    out[:HEADER] = (
        row.worker,
        row.generation,
        row.island,
        row.loss,
        row.status,
        row.t_start,
        row.duration,
        row.version,
        row.current,
        n_curve,
    )
    if m:
        out[HEADER : HEADER + m] = row.objectives
    out[HEADER + m : HEADER + m + dim] = row.genes
    if n_curve:
        out[HEADER + m + dim :] = curve
    return out


def decode_row(data: np.ndarray, dim: int, n_objectives: int = 0) -> tuple[Row, np.ndarray]:
    """Row and loss curve (possibly empty) of one encoded individual.

    Args:
        data: The message.
        dim: Genes per individual.
        n_objectives: Objectives per individual (0: a search with one loss).
    """
    # one tolist() and conversions of Python floats: a third cheaper than indexing numpy
    header = data[:HEADER].tolist()
    worker, generation, island, loss, status, t_start, duration, version, current, n_curve = header
    row = Row(
        int(worker),
        int(generation),
        int(island),
        loss,
        int(status),
        t_start,
        duration,
        int(version),
        int(current),
        data[HEADER + n_objectives : HEADER + n_objectives + dim].copy(),
        data[HEADER : HEADER + n_objectives].copy() if n_objectives else None,
    )
    start = HEADER + n_objectives + dim
    return row, data[start : start + int(n_curve)]


def encode_rows(rows: list[Row]) -> np.ndarray:
    """Several individuals (without curves) as one message.

    Args:
        rows: The individuals.
    """
    return np.concatenate([encode_row(row) for row in rows])


def decode_rows(data: np.ndarray, dim: int, n_objectives: int = 0) -> list[Row]:
    """The individuals of a message of ``encode_rows``.

    Args:
        data: The message.
        dim: Genes per individual.
        n_objectives: Objectives per individual (0: a search with one loss).
    """
    width = HEADER + n_objectives + dim
    return [decode_row(chunk, dim, n_objectives)[0] for chunk in data.reshape(-1, width)]


def encode_keys(keys: list[tuple[int, int, int]]) -> np.ndarray:
    """``(worker, generation, version)`` triples as one message.

    Args:
        keys: The triples.
    """
    return np.asarray(keys, dtype=np.float64).reshape(-1)


def decode_keys(data: np.ndarray) -> list[tuple[int, int, int]]:
    """The triples of a message of ``encode_keys``.

    Args:
        data: The message.
    """
    return [(int(w), int(g), int(v)) for w, g, v in data.reshape(-1, 3)]
