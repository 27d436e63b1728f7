"""Results of a run: best candidates, the full history as a DataFrame/CSV, progress plots.

Evaluations are kept as columns (numpy arrays), so gathering a run of many thousands of
candidates to rank 0 and sharing the result with every rank costs milliseconds. A ``Result``
also gives the figures of a run record (``metrics``, ``headline``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from propulate_hpo.population import OK, STATUS_NAMES
from propulate_hpo.space import SearchSpace
from shared_hpc.errors import UserError
from shared_hpc.files import atomic_path, write_text_atomic

if TYPE_CHECKING:
    import pandas as pd

    from propulate_hpo.checkpoint import Evaluation
    from propulate_hpo.objectives import Objectives
    from shared_hpc.records import Headline

_INTS = ("worker", "generation", "island", "status", "steps")
_FLOATS = ("loss", "t_start", "duration")


@dataclass
class Table:
    """One row per evaluated candidate, as columns.

    Attributes:
        worker: The worker that bred it.
        generation: That worker's counter.
        island: Its birth island.
        status: ``OK``, ``FAILED`` or ``CANCELLED``.
        steps: Intermediate losses of a generator loss (0 for plain losses).
        loss: Its loss; NaN for failed candidates.
        t_start: When its evaluation began (``time.time()``).
        duration: How long it took in seconds.
        genes: Its genes, one row per candidate.
        errors: Row -> error message of failed candidates.
        metrics: Name -> values of the extra metrics (NaN where a candidate has none).
    """

    worker: np.ndarray
    generation: np.ndarray
    island: np.ndarray
    status: np.ndarray
    steps: np.ndarray
    loss: np.ndarray
    t_start: np.ndarray
    duration: np.ndarray
    genes: np.ndarray
    errors: dict[int, str] = field(default_factory=dict)
    metrics: dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.loss)

    @classmethod
    def from_evaluations(cls, evaluations: Sequence[Evaluation], dim: int) -> Table:
        """The table of finished evaluations.

        Args:
            evaluations: The evaluations.
            dim: Parameters of the search space.
        """
        n = len(evaluations)
        columns: dict[str, Any] = {
            "worker": np.fromiter((e.worker for e in evaluations), np.int64, n),
            "generation": np.fromiter((e.generation for e in evaluations), np.int64, n),
            "island": np.fromiter((e.island for e in evaluations), np.int64, n),
            "status": np.fromiter((e.status for e in evaluations), np.int64, n),
            "steps": np.fromiter((len(e.curve) for e in evaluations), np.int64, n),
            "loss": np.fromiter((e.loss for e in evaluations), float, n),
            "t_start": np.fromiter((e.t_start for e in evaluations), float, n),
            "duration": np.fromiter((e.duration for e in evaluations), float, n),
        }
        columns["loss"][columns["status"] == 1] = np.nan
        genes = np.array([e.genes for e in evaluations], dtype=float).reshape(n, dim)
        errors = {i: e.error for i, e in enumerate(evaluations) if e.error is not None}
        metrics: dict[str, np.ndarray] = {}
        for i, e in enumerate(evaluations):
            for name, value in e.metrics.items():
                metrics.setdefault(name, np.full(n, np.nan))[i] = value
        return cls(**columns, genes=genes, errors=errors, metrics=metrics)

    @classmethod
    def concat(cls, tables: Sequence[Table], dim: int) -> Table:
        """The rows of ``tables`` one after the other.

        Args:
            tables: The tables.
            dim: Parameters of the search space.
        """
        columns = {
            name: np.concatenate([getattr(t, name) for t in tables] or [np.zeros(0)])
            for name in _INTS + _FLOATS
        }
        for name in _INTS:
            columns[name] = columns[name].astype(np.int64)
        genes = np.concatenate([t.genes for t in tables] or [np.zeros((0, dim))])
        errors, metrics, offset = {}, {}, 0
        total = sum(len(t) for t in tables)
        for t in tables:
            errors.update({offset + i: message for i, message in t.errors.items()})
            for name, values in t.metrics.items():
                metrics.setdefault(name, np.full(total, np.nan))[offset : offset + len(t)] = values
            offset += len(t)
        return cls(**columns, genes=genes, errors=errors, metrics=metrics)


@dataclass
class Result:
    """Every evaluation of a run (including those of resumed earlier runs).

    Attributes:
        space: The search space.
        table: One row per evaluation.
        members: Per island: ``(island, workers, generations, active, versions)`` of every
            individual its first worker knew at the end.
        stats: Per worker: ``(island, emigrants, immigrants, replaced)``.
        wall_time_s: Wall time of the search (the slowest worker's).
        t_begin: When the run began (``time.time()``).
        n_workers: Workers of the run.
        n_islands: Islands of the run.
        ranks_per_worker: Ranks of each worker.
        objectives: The objectives of a multi-objective search, ``None`` for one loss. The
            history then has a column per objective (as returned) instead of ``loss``, and
            ``pareto_front``, ``hypervolume_history`` and ``plot_front`` give the outcome.
    """

    space: SearchSpace
    table: Table
    members: list[tuple[Any, ...]] = field(default_factory=list)
    stats: list[tuple[int, int, int, int]] = field(default_factory=list)
    wall_time_s: float = math.nan
    t_begin: float = math.nan
    n_workers: int = 1
    n_islands: int = 1
    ranks_per_worker: int = 1
    objectives: Objectives | None = None

    def __post_init__(self) -> None:
        self._history: pd.DataFrame | None = None
        self._hypervolume: float | None = None  # at the default reference, once computed

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_history"] = None  # rebuilt on demand; keeps the broadcast small
        return state

    @property
    def n_evaluations(self) -> int:
        """Number of evaluations."""
        return len(self.table)

    def counts(self) -> dict[str, int]:
        """Number of evaluations by status (ok, failed, cancelled)."""
        found = np.bincount(self.table.status, minlength=3)
        return {name: int(found[code]) for code, name in STATUS_NAMES.items()}

    def first_error(self) -> str | None:
        """The error of the candidate that failed first (``None`` if none failed)."""
        failed = self.history[self.history["status"] == "failed"]
        return str(failed["error"].iloc[0]) if len(failed) else None

    def _order(self) -> np.ndarray:
        """Rows best first: finished before early-stopped, failed last."""
        t = self.table
        rank = np.where(t.status == OK, 0, np.where(np.isnan(t.loss), 2, 1))
        return np.lexsort((t.generation, t.worker, np.nan_to_num(t.loss, nan=np.inf), rank))

    def best(self, n: int = 1) -> list[dict[str, Any]]:
        """The ``n`` best candidates, best first: fully evaluated ones before early-stopped ones.

        An early-stopped candidate's loss is an intermediate one, not comparable with final
        losses, so it only ranks after every candidate that ran to the end. Failed ones never.

        Args:
            n: How many.

        Returns:
            Per candidate: loss, params, worker, generation, island and status.

        Raises:
            UserError: ``n`` is negative.
        """
        if n < 0:
            raise UserError(f"the number of best candidates must be >= 0, got {n}")
        t = self.table
        rows = [i for i in self._order()[:n] if not np.isnan(t.loss[i])]
        return [
            {
                "loss": float(t.loss[i]),
                "params": self.space.decode(t.genes[i]),
                "worker": int(t.worker[i]),
                "generation": int(t.generation[i]),
                "island": int(t.island[i]),
                "status": STATUS_NAMES[int(t.status[i])],
            }
            for i in rows
        ]

    @property
    def best_loss(self) -> float:
        """The loss of the best candidate (NaN if none finished)."""
        best = self.best(1)
        return best[0]["loss"] if best else math.nan

    @property
    def best_params(self) -> dict[str, Any] | None:
        """The parameters of the best candidate (``None`` if none finished)."""
        best = self.best(1)
        return best[0]["params"] if best else None

    @property
    def records(self) -> list[dict[str, Any]]:
        """The evaluations as a list of dicts (the history's rows, in order of completion)."""
        return self.history.to_dict("records") if self.n_evaluations else []

    def migration_stats(self) -> dict[int, dict[str, int]]:
        """Per island: individuals sent out, immigrants taken in, individuals replaced."""
        out = {i: {"emigrants": 0, "immigrants": 0, "replaced": 0} for i in range(self.n_islands)}
        for island, emigrants, immigrants, replaced in self.stats:
            out[island]["emigrants"] += emigrants
            out[island]["immigrants"] += immigrants
            out[island]["replaced"] += replaced
        return out

    def active_sets(self) -> dict[int, set[tuple[int, int]]]:
        """Per island, the keys (worker, generation) active at the end of the run."""
        out: dict[int, set[tuple[int, int]]] = {}
        for island, workers, generations, active, _ in self.members:
            out[island] = set(
                zip(workers[active].tolist(), generations[active].tolist(), strict=True)
            )
        return out

    @property
    def history(self) -> pd.DataFrame:
        """One row per evaluation, in order of completion; times in s since the first start."""
        if self._history is None:
            self._history = self._build_history()
        return self._history

    def _build_history(self) -> pd.DataFrame:
        import pandas as pd

        t = self.table
        active: dict[tuple[int, int], bool] = {}
        migrations: dict[tuple[int, int], int] = {}
        for _, workers, generations, is_active, versions in self.members:
            for key, a, v in zip(
                zip(workers.tolist(), generations.tolist(), strict=True),
                is_active.tolist(),
                versions.tolist(),
                strict=True,
            ):
                active[key] = active.get(key, False) or a
                migrations[key] = max(migrations.get(key, 0), v)
        keys = list(zip(t.worker.tolist(), t.generation.tolist(), strict=True))
        t0 = float(t.t_start.min()) if len(t) else 0.0
        errors = np.full(len(t), None, dtype=object)
        for i, message in t.errors.items():
            errors[i] = message
        columns: dict[str, Any] = {
            "worker": t.worker,
            "generation": t.generation,
            "island": t.island,
            "loss": t.loss,  # with objectives, replaced by their columns below
            "status": np.array([STATUS_NAMES[s] for s in t.status.tolist()], dtype=object),
            "t_start": t.t_start - t0,
            "duration": t.duration,
            "t_end": t.t_start + t.duration - t0,
            "steps": t.steps,
            "active": np.array([active.get(k, False) for k in keys], dtype=bool),
            "migrations": np.array([migrations.get(k, 0) for k in keys], dtype=np.int64),
            "error": errors,
        }
        if self.objectives is not None:
            del columns["loss"]
        columns.update(self.space.decode_columns(t.genes))
        for name, values in t.metrics.items():
            columns[name if name not in columns else f"metric_{name}"] = values
        frame = pd.DataFrame(columns)
        return frame.sort_values(["t_end", "worker", "generation"], kind="stable").reset_index(
            drop=True
        )

    def metrics(self) -> dict[str, Any]:
        """The figures of a run record: best loss and parameters, evaluations by status,
        wall time, with several islands the migration counts, and where the loss reports
        metrics of its own (energy, accuracy) those of every candidate. With objectives: the
        Pareto front and its hypervolume instead of the best loss."""
        if self.objectives is not None:
            return self._front_metrics()
        best = self.best(1)
        metrics: dict[str, Any] = {
            "best_loss": self.best_loss,
            "evaluations": self.n_evaluations,
            "optimizer_wall_time_s": self.wall_time_s,
            **self.counts(),
            "best_params": best[0]["params"] if best else None,
        }
        if self.n_islands > 1:
            metrics["migration"] = {str(k): v for k, v in self.migration_stats().items()}
        if self.table.metrics:
            history = self.history
            own = list(history.columns[-len(self.table.metrics) :])  # built last in the history
            columns = ["worker", "generation", "loss", "status", *own]
            metrics["candidates"] = history[columns].to_dict("records")
        return metrics

    def _front_metrics(self) -> dict[str, Any]:
        from propulate_hpo import front

        assert self.objectives is not None
        names = [*self.objectives.names, *self.space.names]
        history = self.history
        own = list(history.columns[-len(self.table.metrics) :])
        metrics: dict[str, Any] = {
            "objectives": self.objectives.to_list(),
            "evaluations": self.n_evaluations,
            "optimizer_wall_time_s": self.wall_time_s,
            **self.counts(),
            "hypervolume": self.hypervolume(),
            "hypervolume_reference": self.objectives.as_returned(
                front.reference_point(self)
            ).tolist(),
            "pareto_front": self.pareto_front()[names].to_dict("records"),
            "candidates": history[["worker", "generation", "status", *own]].to_dict("records"),
        }
        if self.n_islands > 1:
            metrics["migration"] = {str(k): v for k, v in self.migration_stats().items()}
        return metrics

    def headline(self) -> Headline:
        """The run's one figure: the best loss (the paper reports speed-ups, not losses), or
        with objectives the hypervolume of the front (reference: ``front.reference_point``)."""
        from shared_hpc.records import Headline

        if self.objectives is not None:
            return Headline("hypervolume of the Pareto front", self.hypervolume())
        return Headline("best loss", self.best_loss, higher_is_better=False)

    def pareto_front(self) -> pd.DataFrame:
        """The non-dominated finished candidates of a multi-objective search (see
        ``front.pareto_front``)."""
        from propulate_hpo.front import pareto_front

        return pareto_front(self)

    def hypervolume(self, reference: Sequence[float] | None = None) -> float:
        """Hypervolume of the Pareto front (0 without finished candidates).

        Args:
            reference: The reference point in the objectives' own units and directions
                (default: beyond the worst finished value by a tenth of the range).
        """
        from propulate_hpo.front import hypervolume_history

        assert self.objectives is not None, "a search of one loss has no hypervolume"
        if reference is None and self._hypervolume is not None:
            return self._hypervolume  # metrics, headline and summary all ask for it
        ref = None
        if reference is not None:
            given = dict(zip(self.objectives.names, reference, strict=True))
            ref = self.objectives.minimised(given)
        curve = hypervolume_history(self, ref)
        volume = float(curve["hypervolume"].iloc[-1]) if len(curve) else 0.0
        if reference is None:
            self._hypervolume = volume
        return volume

    def plot_front(self, path: str | Path) -> Path:
        """Plot the Pareto front and the hypervolume over evaluations (see
        ``front.plot_front``).

        Args:
            path: The PNG file.
        """
        from propulate_hpo.front import plot_front

        return plot_front(self, path)

    def to_csv(self, path: str | Path) -> Path:
        """Write the history as CSV (atomically).

        Args:
            path: The CSV file.
        """
        path = Path(path)
        write_text_atomic(path, self.history.to_csv(index=False))
        return path

    def summary(self) -> str:
        """A few lines: evaluations by status, the three best candidates (or the Pareto front),
        migration counts."""
        counts = self.counts()
        lines = [
            f"{self.n_evaluations} evaluations ({counts['ok']} ok, {counts['failed']} failed, "
            f"{counts['cancelled']} cancelled) by {self.n_workers} worker(s) on "
            f"{self.n_islands} island(s) in {self.wall_time_s:.2f} s",
        ]
        if self.objectives is not None:
            lines += self.front_lines()
        for i, best in enumerate(self.best(3) if self.objectives is None else [], start=1):
            params = ", ".join(
                f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                for k, v in best["params"].items()
            )
            if len(params) > 200:
                params = params[:197] + "..."
            lines.append(f"  #{i} loss {best['loss']:.6g} ({best['status']}): {params}")
        if counts["failed"]:
            lines.append(
                f"  {counts['failed']} of {self.n_evaluations} candidates failed; the first: "
                f"{self.first_error()} (every error is in the history's error column)"
            )
        if self.n_islands > 1:
            for island, s in self.migration_stats().items():
                lines.append(
                    f"  island {island}: {s['emigrants']} emigrants, "
                    f"{s['immigrants']} immigrants, {s['replaced']} replaced"
                )
        return "\n".join(lines)

    def front_lines(self, most: int = 12) -> list[str]:
        """Lines on the Pareto front: its size and hypervolume, then up to ``most`` points.

        Args:
            most: Points to list.
        """
        assert self.objectives is not None
        front = self.pareto_front()
        lines = [
            f"  Pareto front: {len(front)} candidate(s), hypervolume {self.hypervolume():.6g} "
            f"({', '.join(self.objectives.to_list())})"
        ]
        for _, row in front.head(most).iterrows():
            values = ", ".join(f"{n}={row[n]:.4g}" for n in self.objectives.names)
            params = ", ".join(
                f"{k}={row[k]:.4g}" if isinstance(row[k], float) else f"{k}={row[k]}"
                for k in self.space.names
            )
            lines.append(f"    {values}: {params[:160]}")
        if len(front) > most:
            lines.append(f"    ... {len(front) - most} more (pareto_front() / the front CSV)")
        return lines

    def plot(self, path: str | Path) -> Path:
        """Best loss so far over evaluations and over time, overall and per island (PNG); with
        objectives the Pareto front and the hypervolume over evaluations (``plot_front``).

        Args:
            path: The PNG file.
        """
        from matplotlib.figure import Figure

        if self.objectives is not None:
            return self.plot_front(path)
        path = Path(path)
        frame = self.history
        ok = frame[frame["status"] != "failed"]
        figure = Figure(figsize=(10, 4), layout="constrained")
        by_evals, by_time = figure.subplots(1, 2)
        positive = len(ok) > 0 and bool((ok["loss"] > 0).all())
        groups = [("all islands", ok)]
        if self.n_islands > 1:
            groups += [
                (f"island {i}", ok[ok["island"] == i]) for i in sorted(ok["island"].unique())
            ]
        for label, part in groups:
            if len(part) == 0:
                continue
            best = np.minimum.accumulate(part["loss"].to_numpy())
            style = {"lw": 2.0, "color": "k"} if label == "all islands" else {"lw": 1.0}
            by_evals.step(np.arange(1, len(best) + 1), best, where="post", label=label, **style)
            by_time.step(part["t_end"].to_numpy(), best, where="post", label=label, **style)
        by_evals.set_xlabel("evaluations (in order of completion)")
        by_time.set_xlabel("time since the first start [s]")
        for ax in (by_evals, by_time):
            ax.set_ylabel("best loss so far")
            if positive:
                ax.set_yscale("log")
            ax.grid(alpha=0.3)
        if len(groups) > 1:
            by_evals.legend(fontsize=8)
        figure.suptitle(f"{self.n_evaluations} evaluations, {self.n_workers} worker(s)")
        with atomic_path(path) as tmp:
            figure.savefig(tmp, format="png", dpi=110)
        return path
