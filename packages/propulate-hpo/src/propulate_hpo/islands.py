"""The island model: migration and pollination out of a worker's island, immigration into it.

With several islands, a worker occasionally sends its island's best individuals to the other
islands along the migration topology. *Migration* moves them: they are deactivated on the home
island (every worker of the island is told). *Pollination* sends copies: the receiving island
deactivates as many of its worst instead. Every event goes into the worker's checkpoint log,
so that a resumed run rebuilds the islands by replaying them.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from propulate_hpo import messages
from propulate_hpo.checkpoint import WorkerLog
from propulate_hpo.layout import Layout
from propulate_hpo.population import Population, Row

Send = Callable[[int, int, np.ndarray], None]


class Islands:
    """One worker's part in the exchange between islands.

    Args:
        layout: This worker's place in the run.
        population: What this worker knows of its island.
        topology: Migrants from island i to island j per event, ``n_islands`` x ``n_islands``.
        probability: Probability per island and generation of a migration event (each worker
            of an island tries with ``probability`` / its number of workers).
        pollination: Send copies instead of migrants.
        rng: The worker's random generator (shared with its breeding).
        send: Sends ``(worker, tag, data)`` to another worker.
        writer: The worker's checkpoint log, ``None`` without a checkpoint.

    Attributes:
        emigrants: Individuals this worker sent out.
        immigrants: Immigrants this worker is responsible for.
        replaced: Individuals deactivated to make room for pollinators.
    """

    def __init__(
        self,
        layout: Layout,
        population: Population,
        topology: np.ndarray,
        probability: float,
        pollination: bool,
        rng: np.random.Generator,
        send: Send,
        writer: WorkerLog | None,
    ) -> None:
        self.layout = layout
        self.population = population
        self.topology = topology
        self.pollination = pollination
        self.rng = rng
        self.send = send
        self.writer = writer
        self.emigrants = self.immigrants = self.replaced = 0
        self._threshold = probability / layout.sizes[layout.island]

    @property
    def exchange(self) -> bool:
        """Whether this worker ever sends individuals to other islands."""
        return self.layout.n_islands > 1 and self._threshold > 0.0

    def maybe_emigrate(self) -> None:
        """After an evaluation: with the event's probability, send individuals away."""
        if self.rng.random() >= self._threshold:
            return
        if self.pollination:
            self._pollinate()
        else:
            self._migrate()

    def _departing(self, rows: np.ndarray, target: int) -> list[Row]:
        out = []
        for i in rows:
            row = self.population.row(int(i))
            row.version += 1
            row.current = int(self.rng.integers(self.layout.sizes[target]))
            out.append(row)
        return out

    def _send_to_island(self, island: int, tag: int, data: np.ndarray) -> None:
        for worker in self.layout.island_workers(island):
            self.send(worker, tag, data)

    def _tell_peers(self, keys: list[tuple[int, int, int]]) -> None:
        """Deactivate ``(worker, generation, version)`` on the island's other workers."""
        if self.layout.peers and keys:
            data = messages.encode_keys(keys)
            for peer in self.layout.peers:
                self.send(peer, messages.TAG_DEACTIVATE, data)

    def _migrate(self) -> None:
        """Real migration: the best individuals this worker is responsible for leave."""
        layout, population = self.layout, self.population
        counts = self.topology[layout.island]
        active = population.active_rows()
        eligible = active[population.current[active] == layout.local]
        total = int(counts.sum())
        if total == 0 or len(eligible) < total:
            return
        chosen = eligible[np.argsort(population.loss[eligible], kind="stable")[:total]]
        self.rng.shuffle(chosen)
        deactivate = []
        offset = 0
        for target, count in enumerate(counts):
            if count == 0:
                continue
            rows = chosen[offset : offset + count]
            offset += count
            departing = self._departing(rows, target)
            self._send_to_island(target, messages.TAG_MIGRANTS, messages.encode_rows(departing))
            for i, row in zip(rows, departing, strict=True):
                key, version = row.key, int(population.version[i])
                population.deactivate(key, version)
                deactivate.append((key[0], key[1], version))
                if self.writer is not None:
                    self.writer.event(
                        "mig", key, version, to=target, cur=row.current, **{"from": layout.island}
                    )
            self.emigrants += len(rows)
        self._tell_peers(deactivate)

    def _pollinate(self) -> None:
        """Pollination: copies of the island's best go out; nothing is deactivated here."""
        layout, population = self.layout, self.population
        for target, count in enumerate(self.topology[layout.island]):
            if count == 0 or population.n_active < count:
                continue
            rows = population.best(int(count))
            departing = self._departing(rows, target)
            self._send_to_island(target, messages.TAG_MIGRANTS, messages.encode_rows(departing))
            if self.writer is not None:
                for row in departing:
                    self.writer.event(
                        "pol",
                        row.key,
                        row.version - 1,
                        to=target,
                        cur=row.current,
                        **{"from": layout.island},
                    )
            self.emigrants += len(rows)

    def immigrate(self, rows: list[Row]) -> None:
        """Take in individuals from another island; with pollination, replace as many worst.

        Args:
            rows: The arriving individuals.
        """
        layout, population = self.layout, self.population
        mine = 0
        new_keys = set()
        for row in rows:
            if population.immigrate(row):
                new_keys.add(row.key)
                if row.current == layout.local:  # counted once per island, by its worker
                    self.immigrants += 1
                    mine += self.pollination
        if not mine:
            return
        # pollination: the responsible worker replaces as many of its worst individuals
        active = population.active_rows()
        eligible = [
            i
            for i in active
            if population.current[i] == layout.local
            and (int(population.worker[i]), int(population.generation[i])) not in new_keys
        ]
        if not eligible:
            return
        victims = population.worst(mine, np.array(eligible))
        keys = []
        for i in victims:
            key = (int(population.worker[i]), int(population.generation[i]))
            version = int(population.version[i])
            population.deactivate(key, version)
            keys.append((key[0], key[1], version))
            if self.writer is not None:
                self.writer.event("deact", key, version, i=layout.island)
        self.replaced += len(keys)
        self._tell_peers(keys)

    def stats(self) -> tuple[int, int, int, int]:
        """``(island, emigrants, immigrants, replaced)`` of this worker."""
        return (self.layout.island, self.emigrants, self.immigrants, self.replaced)
