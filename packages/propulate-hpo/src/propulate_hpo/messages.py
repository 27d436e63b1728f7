"""Wire format: individuals travel as flat float64 arrays, never as pickled objects.

One row is ``HEADER`` numbers, the genes, then an optional loss curve (for the early-stopping
surrogate). Integers up to 2**53 are exact in float64, which covers worker and generation
counters of any run.
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
    out = np.empty(HEADER + len(row.genes) + n_curve)
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
    out[HEADER : HEADER + len(row.genes)] = row.genes
    if n_curve:
        out[HEADER + len(row.genes) :] = curve
    return out


def decode_row(data: np.ndarray, dim: int) -> tuple[Row, np.ndarray]:
    """Row and loss curve (possibly empty) of one encoded individual.

    Args:
        data: The message.
        dim: Genes per individual.
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
        data[HEADER : HEADER + dim].copy(),
    )
    return row, data[HEADER + dim : HEADER + dim + int(n_curve)]


def encode_rows(rows: list[Row]) -> np.ndarray:
    """Several individuals (without curves) as one message.

    Args:
        rows: The individuals.
    """
    return np.concatenate([encode_row(row) for row in rows])


def decode_rows(data: np.ndarray, dim: int) -> list[Row]:
    """The individuals of a message of ``encode_rows``.

    Args:
        data: The message.
        dim: Genes per individual.
    """
    width = HEADER + dim
    return [decode_row(chunk, dim)[0] for chunk in data.reshape(-1, width)]


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
