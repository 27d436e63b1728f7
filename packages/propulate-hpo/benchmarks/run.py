"""Benchmark propulate-hpo against upstream Propulate, Optuna and DEAP; writes BENCHMARKS.md.

    python benchmarks/run.py                 # the full set (about an hour on 2 cores)
    python benchmarks/run.py --quick         # a few minutes, to check the scripts
    python benchmarks/run.py --resume        # after a crash: skip the runs already finished

Every optimizer runs in a fresh process set, side by side in this one run, with 4 workers
(MPI ranks or processes) and the same evaluation budget, in an order shuffled anew for each
seed; figures are medians over seeds.
Measured: wall time of the optimisation (from the moment all workers are ready to the moment
all are done; interpreter start-up and imports excluded), the optimizer's overhead per
evaluation (4 x wall - time spent inside the loss function, over the evaluations: worker time
not spent evaluating), and the best loss. The raw numbers go to ``benchmarks/results.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

from shared_hpc import find_mpiexec, serial_environ, write_text_atomic
from shared_hpc.bench import machine_line, replace_marked_block

HERE = Path(__file__).resolve().parent
PACKAGE = HERE.parent
MPIEXEC = find_mpiexec() or "mpiexec"
WORKERS = 4
CHEAP_OPTIMIZERS = [
    "propulate-hpo",
    "propulate-hpo-paper",
    "propulate-hpo-cma",
    "propulate 1.2.2",
    "optuna-journal",
    "optuna-sqlite",
    "deap-sync-ga",
]
PROGRESS = PACKAGE / "bench-results" / "progress.jsonl"  # every finished run, as it finishes
SQLITE_FUNCTIONS = 3  # Optuna with SQLite: the functions the issue names (1-4 min per run)
SLEEP_OPTIMIZERS = [
    "sleep-only",
    "propulate-hpo",
    "propulate-hpo-total",
    "propulate 1.2.2",
    "deap-sync-ga",
    "deap-sync-ga-pop8",
]
OPTIMIZERS = {
    "propulate-hpo": "propulate-hpo 0.1.0 (this package), default breeding: the paper's GA "
    "plus 15 % samples from a Gaussian fitted to the elite (`EliteGaussian`)",
    "propulate-hpo-paper": "the same with the paper's breeding alone (the GA, "
    "`elite_probability=0`): the algorithm upstream runs",
    "propulate-hpo-cma": "the same with its CMA-ES propagator (`BasicCMA`) instead of the "
    "default breeding: the choice for smooth landscapes",
    "propulate-hpo-total": "the same with one budget for all workers (`max_evaluations`, which "
    "upstream lacks) instead of a fixed number per worker",
    "propulate 1.2.2": "upstream Propulate 1.2.2",
    "optuna-journal": "Optuna TPE, JournalStorage (file)",
    "optuna-sqlite": "Optuna TPE, SQLite storage",
    "deap-sync-ga": "DEAP synchronous GA, process pool",
    "deap-sync-ga-pop8": "the same with a population of 8 (= Propulate's breeding pool)",
    "sleep-only": "no optimizer: each rank only evaluates random points (uneven-times table "
    "only; the ceiling this machine allows)",
}


def _command(optimizer: str, function: str, evals: int, seed: int, sleep: float) -> list[str]:
    py = sys.executable
    args = [function, str(evals), str(seed), str(sleep)]
    if optimizer.startswith("propulate-hpo"):
        variant = optimizer.removeprefix("propulate-hpo").lstrip("-")
        script = str(HERE / "bench_propulate_hpo.py")
        return [MPIEXEC, "-n", str(WORKERS), py, script, *args, *([variant] if variant else [])]
    if optimizer == "propulate 1.2.2":
        return [MPIEXEC, "-n", str(WORKERS), py, str(HERE / "bench_upstream.py"), *args]
    if optimizer == "sleep-only":
        return [MPIEXEC, "-n", str(WORKERS), py, str(HERE / "bench_sleep_only.py"), *args]
    if optimizer.startswith("optuna"):
        kind = optimizer.split("-")[1]
        return [py, str(HERE / "bench_optuna.py"), kind, *args, str(WORKERS)]
    total = [function, str(WORKERS * evals), str(seed), str(sleep), str(WORKERS)]
    if optimizer == "deap-sync-ga-pop8":
        total.append("8")
    return [py, str(HERE / "bench_deap.py"), *total]


def measure(optimizer: str, function: str, evals: int, seed: int, sleep: float = 0.0) -> dict:
    """One run in fresh processes; returns the runner's RESULT line plus derived measures."""
    env = {**serial_environ(), "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    done = subprocess.run(
        _command(optimizer, function, evals, seed, sleep),
        capture_output=True,
        text=True,
        timeout=900,  # the slowest run (Optuna SQLite, rastrigin) takes about 1 minute here
        cwd=HERE,
        env=env,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(
            f"{optimizer} {function} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
        )
    result = json.loads(lines[-1][7:])
    result.update(function=function, evals_per_worker=evals, seed=seed, sleep_max_s=sleep)
    result["wall_per_eval_ms"] = 1e3 * result["wall_s"] / result["evals"]
    lost = WORKERS * result["wall_s"] - result["objective_s"]
    result["overhead_per_eval_ms"] = 1e3 * lost / result["evals"]
    result["throughput_per_s"] = result["evals"] / result["wall_s"]
    return result


def _shuffled(optimizers: list[str], seed: int) -> list[str]:
    """The optimizers in an order drawn anew for each seed: none always runs right after the
    same other one (a run after Optuna's minutes of file locking, say, can start slower; a
    rotation would keep the neighbours)."""
    return random.Random(seed).sample(optimizers, len(optimizers))


def import_time(module: str, repeats: int = 5) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", f"import {module}"], check=True, capture_output=True)
        times.append(time.perf_counter() - started)
    baseline = []
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        baseline.append(time.perf_counter() - started)
    return statistics.median(times) - statistics.median(baseline)


def _select(runs: list[dict], function: str, optimizer: str) -> list[dict]:
    """The runs of ``optimizer`` on ``function``."""
    return [r for r in runs if r["function"] == function and r["optimizer"] == optimizer]


def _median(runs: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def _fmt(value: float, digits: int = 3) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 1e4 or abs(value) < 1e-3:
        return f"{value:.2e}"
    return f"{value:.{digits}g}"


def machine() -> str:
    """``shared_hpc.bench.machine_line`` and the MPI library the runs use: this process starts
    no MPI, so the machine line cannot name it."""
    mpi = subprocess.run(
        [sys.executable, "-c", "from mpi4py import MPI; print(MPI.Get_library_version())"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()[0]
    return f"{machine_line()}; MPI: {' '.join(mpi.split())}"


def cheap_table(runs: list[dict], functions: list[str], optimizers: list[str]) -> list[str]:
    lines = [
        "| function | optimizer | wall [s] | wall / eval [ms] | overhead / eval [ms] | "
        "best loss (median) | vs propulate-hpo: wall |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for function in functions:
        ours = _select(runs, function, "propulate-hpo")
        for optimizer in optimizers:
            part = _select(runs, function, optimizer)
            if not part:
                continue
            ratio = _median(part, "wall_s") / _median(ours, "wall_s") if ours else float("nan")
            lines.append(
                f"| {function} | {optimizer} | {_fmt(_median(part, 'wall_s'))} | "
                f"{_fmt(_median(part, 'wall_per_eval_ms'))} | "
                f"{_fmt(_median(part, 'overhead_per_eval_ms'))} | {_fmt(_median(part, 'best'))} "
                f"| {ratio:.1f}x |"
            )
    return lines


def _no_worse(ours: list[float], theirs: list[float]) -> tuple[bool, float]:
    """Is ours no worse? Its median is at most theirs, or the difference is not significant
    (one-sided Mann-Whitney U test, alternative: ours larger, p >= 0.05). Returns (ok, p)."""
    from scipy.stats import mannwhitneyu

    p = float(mannwhitneyu(ours, theirs, alternative="greater").pvalue)
    return statistics.median(ours) <= statistics.median(theirs) or p >= 0.05, p


def checks(data: dict) -> list[tuple[str, str, bool]]:
    """The issue's targets, checked on the measurements (never typed in): (where, what, met)."""
    out = []
    functions = data["config"]["functions"]
    for budget, runs, _ in data["tables"]:
        for function in functions:
            by = {o: _select(runs, function, o) for o in OPTIMIZERS}
            ours = by["propulate-hpo"]
            if not ours:
                continue
            where = f"{WORKERS}x{budget} {function}"
            wall = _median(ours, "wall_per_eval_ms")
            best = [r["best"] for r in ours]
            if by["propulate 1.2.2"]:
                up = by["propulate 1.2.2"]
                factor = _median(up, "wall_per_eval_ms") / wall
                out.append((where, f"wall/eval {factor:.1f}x below upstream", factor >= 1))
                ok, p = _no_worse(best, [r["best"] for r in up])
                out.append((where, f"best loss no worse than upstream (p = {p:.2f})", ok))
            for kind in ("optuna-journal", "optuna-sqlite"):
                if by[kind]:
                    factor = _median(by[kind], "wall_per_eval_ms") / wall
                    out.append((where, f"{factor:.1f}x below {kind} (target 100x)", factor >= 100))
                    ok, p = _no_worse(best, [r["best"] for r in by[kind]])
                    out.append((where, f"best loss no worse than {kind} (p = {p:.2f})", ok))
    sleep_runs = data["sleep"]
    for function in data["config"]["sleep_functions"]:
        ga = _select(sleep_runs, function, "deap-sync-ga")
        for ours_name in ("propulate-hpo", "propulate-hpo-total"):
            ours = _select(sleep_runs, function, ours_name)
            if ours and ga:
                gain = _median(ours, "throughput_per_s") / _median(ga, "throughput_per_s")
                out.append(
                    (
                        f"uneven times, {function}",
                        f"{ours_name} throughput {gain:.2f}x that of deap-sync-ga",
                        gain > 1,
                    )
                )
    return out


def targets(data: dict) -> list[str]:
    """The checks as a markdown list, one line per function and budget."""
    out, current = [], None
    found = checks(data)
    tests = sum(text.startswith("best loss") for _, text, _ in found)
    for where, text, ok in found:
        verdict = f"{text}: {'yes' if ok else '**no**'}"
        if where == current:
            out[-1] += f"; {verdict}"
        else:
            out.append(f"- {where}: {verdict}")
            current = where
    for budget, runs, _ in data["tables"]:
        verdicts = []
        for function in data["config"]["functions"]:
            ours = [r["best"] for r in _select(runs, function, "propulate-hpo")]
            paper = [r["best"] for r in _select(runs, function, "propulate-hpo-paper")]
            if ours and paper:
                ok, p = _no_worse(ours, paper)
                verdicts.append(
                    f"{function} {_fmt(statistics.median(ours))} vs "
                    f"{_fmt(statistics.median(paper))} ({'no worse' if ok else '**worse**'}, "
                    f"p = {p:.2f})"
                )
        if verdicts:
            out.append(
                f"- {WORKERS}x{budget}, for reference (not a target): median best loss of the "
                f"default breeding vs the paper's GA alone (propulate-hpo-paper): "
                f"{'; '.join(verdicts)}"
            )
        verdicts = []
        for function in data["config"]["functions"]:
            cma = [r["best"] for r in _select(runs, function, "propulate-hpo-cma")]
            for kind in ("optuna-journal", "optuna-sqlite"):
                theirs = [r["best"] for r in _select(runs, function, kind)]
                if cma and theirs:
                    ok, p = _no_worse(cma, theirs)
                    verdict = "no worse than" if ok else "**worse** than"
                    verdicts.append(f"{function} {verdict} {kind} (p = {p:.2f})")
        if verdicts:
            out.append(
                f"- {WORKERS}x{budget}, for reference (not a target): best loss of "
                f"propulate-hpo-cma: {'; '.join(verdicts)}"
            )
    ceiling = [r for r in data["sleep"] if r["optimizer"] == "sleep-only"]
    for function in data["config"]["sleep_functions"]:
        top = [r for r in ceiling if r["function"] == function]
        if not top:
            continue
        parts = []
        for name in ("propulate-hpo", "propulate-hpo-total", "deap-sync-ga"):
            runs = _select(data["sleep"], function, name)
            if runs:
                share = _median(runs, "throughput_per_s") / _median(top, "throughput_per_s")
                parts.append(f"{name} {100 * share:.0f} %")
        out.append(
            f"- uneven times, {function}, for reference (not a target): throughput as a share "
            f"of sleep-only's: {', '.join(parts)}"
        )
    out += [
        "",
        "*No worse* means: the median best loss is at most the other's, or the "
        "difference is not significant (one-sided Mann-Whitney U test over the seeds, "
        "p >= 0.05). With few seeds the medians of two equal optimizers differ by chance, and "
        "the asynchronous runs are not repeatable: which results a rank knows when it breeds "
        "depends on timing (here 4 ranks share 2 cores), so the same seed gives another best "
        "loss in another run. The tests are not corrected for their number: with "
        f"{tests} comparisons of best losses, even between optimizers that are equal "
        f"everywhere at least one *no* comes with probability 1 - 0.95^{tests} = "
        f"{1 - 0.95**tests:.0%}.",
    ]
    return out


def write_markdown(data: dict, path: Path) -> None:
    cfg = data["config"]
    lines = [
        "# Benchmarks of propulate-hpo",
        "",
        f"Written by `benchmarks/run.py` on {data['date']} in {data['minutes']:.0f} minutes"
        + (" (resumed after an interruption: the last part only)." if data.get("resumed") else "."),
        f"Machine: {data['machine']}. "
        + (
            "**Other processes were running** (load average above 1 at the start), so absolute "
            "times are inflated; all optimizers ran side by side in the same conditions."
            if data["busy"]
            else "The machine was otherwise idle."
        ),
        "",
        f"{WORKERS} workers each (MPI ranks for the two Propulates, processes for Optuna and "
        "the DEAP pool), medians over seeds: "
        + ", ".join(
            f"{n} seeds at {WORKERS} x {budget}" if budget != "sleep" else f"{n} with uneven times"
            for budget, n in cfg["seeds"].items()
        )
        + f" (Optuna, it is slow: seeds {cfg['optuna_seeds']} with a journal, "
        f"{cfg['sqlite_seeds']} with SQLite); the best loss of one seed spreads over orders of "
        "magnitude, so the quality comparison needs many. The runs follow each other, the "
        "optimizers in an order shuffled anew for each seed. Optuna runs only at the "
        "smaller budget, and with SQLite only on "
        f"{', '.join(cfg['sqlite_functions'])} (one such run takes one to four minutes here, "
        "and the whole benchmark is kept under an hour). *wall*: from all workers "
        "ready to all done (no interpreter start-up or imports); *overhead / eval*: "
        f"({WORKERS} x wall - time inside the loss) / evaluations, i.e. worker time not spent "
        "evaluating. propulate-hpo writes its crash-safe checkpoint during the run, as upstream "
        "Propulate writes its pickle checkpoint. Functions, dimensions and domains as in the "
        "paper (sphere 2-D, rosenbrock 2-D, rastrigin 20-D, griewank 10-D, schwefel 10-D, "
        "bukin N.6 2-D).",
        "",
        "Optimizers: " + "; ".join(f"**{k}**: {v}" for k, v in OPTIMIZERS.items()) + ".",
        "DEAP runs eaSimple's generational loop (blend crossover, Gaussian mutation, tournament "
        "of 3, population 40 or 80) with `toolbox.map = pool.map` over 4 processes, as its "
        "documentation recommends; Optuna runs `study.optimize` in 4 processes on one shared "
        "storage with a differently seeded TPE sampler each, as its documentation recommends.",
        "",
    ]
    for budget, runs, optimizers in data["tables"]:
        lines += [f"## {WORKERS} x {budget} evaluations, cheap functions", ""]
        lines += cheap_table(runs, cfg["functions"], optimizers)
        lines.append("")
    lines += [f"## Uneven evaluation times: each call sleeps U(0, {cfg['sleep_ms']:.0f} ms)", ""]
    lines += [
        "| function | optimizer | wall [s] | evaluations / s | overhead / eval [ms] | "
        "best loss (median) |",
        "|---|---|---:|---:|---:|---:|",
    ]
    sleep_runs = data["sleep"]
    for function in cfg["sleep_functions"]:
        for optimizer in OPTIMIZERS:
            part = _select(sleep_runs, function, optimizer)
            if part:
                lines.append(
                    f"| {function} | {optimizer} | {_fmt(_median(part, 'wall_s'))} | "
                    f"{_fmt(_median(part, 'throughput_per_s'))} | "
                    f"{_fmt(_median(part, 'overhead_per_eval_ms'))} | "
                    f"{_fmt(_median(part, 'best'))} |"
                )
    lines += [
        "",
        "The synchronous GA waits for the slowest evaluation of every generation; the "
        "asynchronous Propulates never wait, except once at the end when each worker has a "
        "fixed number of candidates (the run ends with the worker of the longest total). With "
        "one budget for all workers (`propulate-hpo-total`) not even then. With a generation "
        "ten times the number of workers (population 40) the pool keeps its workers almost as "
        "busy; with a generation of Propulate's pool size (8) the barriers cost much more. "
        "*sleep-only* runs no optimizer at all: each rank evaluates a fixed number of random "
        "points, so it has the same wait at the end as the Propulates with a number per worker "
        "and is their ceiling on this machine (4 ranks on 2 cores: waking up and the other "
        "ranks' CPU time cost a little even here); `propulate-hpo-total` has no such wait and "
        "can exceed it.",
        "",
    ]
    lines += ["## Import time", "", "| module | `import` [s] |", "|---|---:|"]
    for module, seconds in data["imports"].items():
        lines.append(f"| `{module}` | {seconds:.2f} |")
    lines += ["", "## Targets of the issue, checked on these numbers", ""]
    lines += targets(data)
    lines += [
        "",
        'Reproduce: `python benchmarks/run.py` (or `nox -s "bench(name=propulate-hpo)"`); '
        "raw numbers in `benchmarks/results.json`.",
        "",
    ]
    write_text_atomic(path, "\n".join(lines))


def headline(data: dict) -> str:
    """The README's benchmark paragraph, from the measurements."""
    _, runs, _ = data["tables"][0]
    budget = data["tables"][0][0]
    functions = data["config"]["functions"]

    def ratios(other: str) -> list[float]:
        out = []
        for function in functions:
            ours = _select(runs, function, "propulate-hpo")
            theirs = _select(runs, function, other)
            if ours and theirs:
                out.append(_median(theirs, "wall_per_eval_ms") / _median(ours, "wall_per_eval_ms"))
        return out

    def span(values: list[float]) -> str:
        return f"{min(values):.0f}-{max(values):.0f}x" if values else "n/a"

    up = ratios("propulate 1.2.2")
    parts = [
        f"On {data['machine'].split(';')[0]}"
        + (" (shared with other jobs)" if data["busy"] else "")
        + f", {WORKERS} workers x {budget} evaluations of {len(functions)} cheap functions, "
        f"medians over seeds: the wall time per evaluation of propulate-hpo is "
        f"{min(up):.1f}-{max(up):.1f}x below upstream Propulate 1.2.2, "
        f"{span(ratios('optuna-journal'))} below Optuna with a shared journal file and "
        f"{span(ratios('optuna-sqlite'))} below Optuna with SQLite."
    ]
    sleep = data["sleep"]

    def throughput(name: str) -> float:
        return statistics.median(r["throughput_per_s"] for r in sleep if r["optimizer"] == name)

    names = {r["optimizer"] for r in sleep}
    if {"propulate-hpo", "deap-sync-ga"} <= names:
        text = (
            f"With evaluation times drawn from 0-{data['config']['sleep_ms']:.0f} ms its "
            f"throughput is {throughput('propulate-hpo') / throughput('deap-sync-ga'):.2f}x "
            "that of DEAP's synchronous GA (population 40)"
        )
        if "propulate-hpo-total" in names:
            gain = throughput("propulate-hpo-total") / throughput("deap-sync-ga")
            text += f" ({gain:.2f}x with one budget for all workers, `max_evaluations`)"
        if "sleep-only" in names:
            text += (
                f", {100 * throughput('propulate-hpo') / throughput('sleep-only'):.0f} % of "
                "what ranks that only sleep reach on this machine"
            )
        parts.append(text + ".")
    imports = data["imports"]
    parts.append(
        f"`import propulate_hpo` takes {imports['propulate_hpo']:.2f} s, `import propulate` "
        f"{imports['propulate']:.2f} s."
    )
    found = checks(data)
    missed = [f"{where}: {text}" for where, text, ok in found if not ok]
    parts.append(
        f"**Targets of the issue: {len(found) - len(missed)} of {len(found)} checks met"
        + (f"; not met: {'; '.join(missed)}.**" if missed else ".**")
        + " Every check is listed at the end of BENCHMARKS.md."
    )
    return " ".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small run to check the scripts")
    parser.add_argument(
        "--seeds", type=int, default=24, help="seeds at 4 x 250 (the run-to-run spread is large)"
    )
    parser.add_argument("--long-seeds", type=int, default=12, help="seeds at 4 x 1000")
    parser.add_argument("--sleep-seeds", type=int, default=8, help="seeds with uneven times")
    parser.add_argument(
        "--optuna-seeds", type=int, default=8, help="seeds of Optuna with a journal (slow)"
    )
    parser.add_argument(
        "--sqlite-seeds", type=int, default=3, help="seeds of Optuna with SQLite (slower)"
    )
    parser.add_argument("--output", type=Path, default=PACKAGE / "BENCHMARKS.md")
    parser.add_argument(
        "--resume", action="store_true", help=f"reuse the finished runs in {PROGRESS}"
    )
    parser.add_argument(
        "--from-results",
        action="store_true",
        help="only rewrite the markdown from benchmarks/results.json",
    )
    args = parser.parse_args(argv)
    if args.from_results:
        data = json.loads((HERE / "results.json").read_text())
        write_markdown(data, args.output)
        replace_marked_block(PACKAGE / "README.md", "benchmark-headline", headline(data))
        print(f"wrote {args.output} and the README headline from benchmarks/results.json")
        return 0
    from common import FUNCTIONS

    functions = FUNCTIONS[:2] if args.quick else FUNCTIONS
    if args.quick:
        args.seeds = args.long_seeds = args.sleep_seeds = args.optuna_seeds = args.sqlite_seeds = 1
    seeds, long_seeds, sleep_seeds = args.seeds, args.long_seeds, args.sleep_seeds
    optuna_seeds = list(range(args.optuna_seeds))
    sqlite_seeds = list(range(args.sqlite_seeds))
    sqlite_functions = functions[:SQLITE_FUNCTIONS]
    budgets = (
        [(40, CHEAP_OPTIMIZERS, seeds)]
        if args.quick
        else [
            (250, CHEAP_OPTIMIZERS, seeds),
            (
                1000,
                [
                    "propulate-hpo",
                    "propulate-hpo-paper",
                    "propulate-hpo-cma",
                    "propulate 1.2.2",
                    "deap-sync-ga",
                ],
                long_seeds,
            ),
        ]
    )
    sleep_functions = ["sphere"] if args.quick else ["sphere", "rastrigin"]
    sleep_evals = 30 if args.quick else 250
    started = time.time()
    busy = os.getloadavg()[0] > 1.0
    info = machine()
    finished = {}
    if args.resume and PROGRESS.exists():
        for line in PROGRESS.read_text().splitlines():
            entry = json.loads(line)
            finished[tuple(entry["key"])] = entry["run"]
    resumed = bool(finished)
    if not resumed:
        PROGRESS.parent.mkdir(exist_ok=True)
        PROGRESS.write_text("")

    def measure_once(optimizer: str, function: str, evals: int, seed: int, sleep: float = 0.0):
        """A run of ``measure``, kept on disk at once: a crash loses no finished run."""
        key = (optimizer, function, evals, seed, sleep)
        if key not in finished:
            finished[key] = measure(*key)
            with PROGRESS.open("a") as f:
                f.write(json.dumps({"key": key, "run": finished[key]}) + "\n")
        return finished[key]

    tables = []
    for evals, optimizers, n_seeds in budgets:
        runs = []
        for function in functions:
            for seed in range(n_seeds):
                for optimizer in _shuffled(optimizers, seed):
                    if optimizer == "optuna-journal" and seed not in optuna_seeds:
                        continue
                    if optimizer == "optuna-sqlite" and (
                        function not in sqlite_functions or seed not in sqlite_seeds
                    ):
                        continue
                    run = measure_once(optimizer, function, evals, seed)
                    runs.append(run)
                    print(
                        f"{WORKERS}x{evals} {function} seed {seed} {optimizer}: "
                        f"{run['wall_s']:.3f} s, best {run['best']:.4g}",
                        flush=True,
                    )
        tables.append((evals, runs, optimizers))
    sleep_runs = []
    for function in sleep_functions:
        for seed in range(sleep_seeds):
            for optimizer in _shuffled(SLEEP_OPTIMIZERS, seed):
                run = measure_once(optimizer, function, sleep_evals, seed, sleep=0.02)
                sleep_runs.append(run)
                print(
                    f"sleep {function} seed {seed} {optimizer}: {run['wall_s']:.3f} s, "
                    f"{run['throughput_per_s']:.1f} evals/s",
                    flush=True,
                )
    imports = {m: import_time(m) for m in ("propulate_hpo", "propulate", "optuna", "deap")}
    data = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(started)),
        "minutes": (time.time() - started) / 60,
        "machine": info,
        "busy": busy,
        "resumed": resumed,
        "config": {
            "seeds": {str(evals): n for evals, _, n in budgets} | {"sleep": sleep_seeds},
            "optuna_seeds": optuna_seeds,
            "sqlite_seeds": sqlite_seeds,
            "sqlite_functions": sqlite_functions,
            "functions": functions,
            "sleep_functions": sleep_functions,
            "sleep_ms": 20.0,
            "workers": WORKERS,
        },
        "tables": tables,
        "sleep": sleep_runs,
        "imports": imports,
    }
    write_text_atomic(HERE / "results.json", json.dumps(data, indent=1))
    write_markdown(data, args.output)
    if not args.quick:
        replace_marked_block(PACKAGE / "README.md", "benchmark-headline", headline(data))
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(HERE))
    sys.exit(main())
