"""A whole search from its settings: the loss function and space a ``RunConfig`` names, run.

``propulate-hpo run`` is ``run_search`` with a ``RunConfig`` from flags and TOML; a script or a
notebook can do the same with ``load_config(RunConfig, "run.toml")``. Loss functions are named
as ``package.module:function`` or ``path/to/file.py:function``.
"""

from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path
from typing import Any

from propulate_hpo.config import RunConfig
from propulate_hpo.functions import BENCHMARKS, benchmark
from propulate_hpo.mo_functions import MO_BENCHMARKS
from propulate_hpo.propulator import LossFunction, propulate, require_run_memory
from propulate_hpo.results import Result
from propulate_hpo.space import SearchSpace
from shared_hpc.errors import UserError
from shared_hpc.fingerprint import file_fingerprint
from shared_hpc.mpi import Comm, get_comm


def _syntax_error(error: SyntaxError) -> UserError:
    """``loss.py:3: invalid syntax`` instead of a traceback through importlib."""
    return UserError(f"{error.filename}:{error.lineno}: {error.msg}")


def load_loss(spec: str) -> LossFunction:
    """The function ``spec`` names: ``package.module:function`` or ``path/to/file.py:function``.

    Args:
        spec: Where the function is.

    Returns:
        The function.

    Raises:
        UserError: A malformed ``spec``, a module that cannot be imported or has a syntax
            error, a missing file or a name that is not a function.
    """
    target, _, name = spec.rpartition(":")
    if not target or not name:
        raise UserError(f"loss must look like 'package.module:function', got {spec!r}")
    if target.endswith(".py"):
        path = Path(target)
        if not path.is_file():
            raise UserError(f"loss file {path} does not exist")
        module_spec = importlib.util.spec_from_file_location(path.stem, path)
        assert module_spec is not None and module_spec.loader is not None
        module = importlib.util.module_from_spec(module_spec)
        try:
            module_spec.loader.exec_module(module)
        except SyntaxError as error:
            raise _syntax_error(error) from None
    else:
        try:
            module = importlib.import_module(target)
        except ImportError as error:
            raise UserError(f"cannot import {target!r}: {error}") from None
        except SyntaxError as error:
            raise _syntax_error(error) from None
    function = getattr(module, name, None)
    if not callable(function):
        raise UserError(f"{target!r} has no function {name!r}")
    return function


def load_problem(config: RunConfig) -> tuple[LossFunction, SearchSpace]:
    """The loss function and search space of ``config``: a benchmark function, or yours.

    Args:
        config: The run's settings.

    Returns:
        ``(loss_fn, space)``.

    Raises:
        UserError: A loss function that cannot be loaded, or a bad search space file.
    """
    if config.function in MO_BENCHMARKS:
        problem = MO_BENCHMARKS[config.function]
        return problem.loss, problem.space(config.dim)
    if config.function is not None:
        return benchmark(config.function, config.dim)
    assert config.loss is not None and config.space is not None  # RunConfig checks both
    space = SearchSpace.from_toml(config.space)
    return load_loss(config.loss), space


def loss_fingerprint(config: RunConfig) -> dict[str, Any]:
    """What identifies the loss function of ``config`` in a checkpoint: a benchmark's name, a
    loss file's content and function name, a module's function by its name.

    Args:
        config: The run's settings (its loss already loaded, so a loss file exists).
    """
    if config.function is not None:
        return {"name": config.function}
    assert config.loss is not None  # RunConfig asks for a function or a loss
    target, _, name = config.loss.rpartition(":")
    if target.endswith(".py"):
        return file_fingerprint(target, function=name)
    return {"name": config.loss}


def run_search(config: RunConfig, comm: Comm | None = None) -> Result:
    """Load the problem ``config`` names and search it (collective: call on every rank).

    Args:
        config: What to minimise, and how.
        comm: The ranks of the run (default: ``shared_hpc.get_comm()``).

    Returns:
        Every evaluation of the run, on every rank.

    Raises:
        UserError: A problem that cannot be loaded, settings that cannot work on these ranks,
            or a run too large for the memory left, before any evaluation.
    """
    comm = get_comm() if comm is None else comm
    if config.function is not None:  # before its search space is built
        known = BENCHMARKS.get(config.function) or MO_BENCHMARKS[config.function]
        dim = known.dim if config.dim is None else config.dim
        require_run_memory(dim, config, comm.Get_size() // config.ranks_per_worker)
    loss_fn, space = load_problem(config)
    fingerprint = loss_fingerprint(config)
    return propulate(loss_fn, space, config, comm=comm, loss_fingerprint=fingerprint)
