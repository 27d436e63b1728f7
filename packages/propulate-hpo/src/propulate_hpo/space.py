"""Search spaces: typed parameters, validated up front, encoded as one float per parameter.

Every candidate is a float64 vector ("genes") in *internal* coordinates: a float parameter is
its value (its natural log for ``log=True``), an int parameter its integer value (or the log of
it), a categorical parameter the index of its choice. Propagators work on these vectors and
``SearchSpace.repair`` snaps them back into the space (clip, round), so that two candidates
that decode to the same parameters have byte-identical genes — which is how duplicate children
are recognised.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from shared_hpc.errors import UserError

FLOAT, INT, CATEGORICAL = 0, 1, 2
_KIND_NAMES = {FLOAT: "float", INT: "int", CATEGORICAL: "categorical"}


class SearchSpaceError(UserError):
    """A search space that cannot be searched; raised before any rank starts work."""


def _number(name: str, what: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise SearchSpaceError(f"parameter {name!r}: {what} must be a number, got {value!r}")
    if not math.isfinite(float(value)):
        raise SearchSpaceError(f"parameter {name!r}: {what} must be finite, got {value!r}")
    return float(value)


def _check_range(name: str, low: float, high: float, log: bool) -> None:
    if low == high:
        raise SearchSpaceError(f"parameter {name!r}: empty range [{low}, {high}] (low == high)")
    if low > high:
        raise SearchSpaceError(f"parameter {name!r}: low ({low}) must be < high ({high})")
    if log and low <= 0:
        raise SearchSpaceError(
            f"parameter {name!r}: log scale needs positive bounds, got low = {low}"
        )


@dataclass(frozen=True)
class Float:
    """A real parameter in [low, high], sampled uniformly or log-uniformly (``log=True``).

    Attributes:
        low: The lower bound.
        high: The upper bound.
        log: Sample on a log scale (bounds > 0).
    """

    low: float
    high: float
    log: bool = False


@dataclass(frozen=True)
class Int:
    """An integer parameter in [low, high] (both included), optionally on a log scale.

    Attributes:
        low: The lowest value.
        high: The highest value.
        log: Sample on a log scale (bounds > 0).
    """

    low: int
    high: int
    log: bool = False


@dataclass(frozen=True)
class Categorical:
    """One of a fixed set of choices (strings, numbers or booleans).

    Args:
        choices: The values.
    """

    choices: tuple[Any, ...]

    def __init__(self, choices: Iterable[Any]) -> None:
        object.__setattr__(self, "choices", tuple(choices))


Parameter = Float | Int | Categorical


def parameter(name: str, spec: Any) -> Parameter:
    """Turn one user spec into a validated parameter.

    Accepted: a ``Float``/``Int``/``Categorical``; ``(low, high)`` of two numbers (ints give an
    ``Int``, any float a ``Float``); a sequence of strings (categorical); or a mapping
    ``{"type": "float"|"int"|"categorical", "low", "high", "log", "choices"}`` as written in TOML.

    Args:
        name: The parameter's name.
        spec: Its spec, in any of the forms above.

    Raises:
        SearchSpaceError: A spec that is unreadable, empty or inconsistent.
    """
    if not isinstance(name, str) or not name:
        raise SearchSpaceError(f"parameter names must be non-empty strings, got {name!r}")
    if name.startswith("_"):
        raise SearchSpaceError(f"parameter {name!r}: names starting with '_' are reserved")
    if isinstance(spec, Mapping):
        spec = _from_mapping(name, spec)
    elif isinstance(spec, (tuple, list)) and not isinstance(spec, str):
        spec = _from_sequence(name, spec)
    if isinstance(spec, Categorical):
        if len(spec.choices) == 0:
            raise SearchSpaceError(f"parameter {name!r}: a categorical needs at least one choice")
        for choice in spec.choices:
            if not isinstance(choice, (str, int, float, bool)):
                raise SearchSpaceError(
                    f"parameter {name!r}: choice {choice!r} is not a string, number or bool"
                )
        if len({(type(c), c) for c in spec.choices}) != len(spec.choices):
            raise SearchSpaceError(f"parameter {name!r}: duplicate choices in {spec.choices}")
        return spec
    if isinstance(spec, (Float, Int)):
        low = _number(name, "low", spec.low)
        high = _number(name, "high", spec.high)
        if isinstance(spec, Int) and (low != int(low) or high != int(high)):
            raise SearchSpaceError(f"parameter {name!r}: int bounds must be integers")
        _check_range(name, low, high, bool(spec.log))
        if isinstance(spec, Int):
            return Int(int(low), int(high), bool(spec.log))
        return Float(low, high, bool(spec.log))
    raise SearchSpaceError(
        f"parameter {name!r}: cannot read {spec!r}; use (low, high), a list of choices, "
        "Float/Int/Categorical, or {type = ..., low = ..., high = ...}"
    )


def _from_sequence(name: str, spec: Sequence[Any]) -> Parameter:
    if len(spec) == 2 and all(
        isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)
        for v in spec
    ):
        low, high = spec
        if all(isinstance(v, (int, np.integer)) for v in spec):
            return Int(int(low), int(high))
        return Float(float(low), float(high))
    if len(spec) > 0 and all(isinstance(v, str) for v in spec):
        return Categorical(spec)
    if len(spec) == 0:
        raise SearchSpaceError(f"parameter {name!r}: empty list")
    raise SearchSpaceError(
        f"parameter {name!r}: {list(spec)!r} is neither (low, high) nor a list of strings; "
        'for numeric choices write {type = "categorical", choices = [...]}'
    )


def _from_mapping(name: str, spec: Mapping[str, Any]) -> Parameter:
    kind = spec.get("type")
    allowed = {
        "float": {"type", "low", "high", "log"},
        "int": {"type", "low", "high", "log"},
        "categorical": {"type", "choices"},
    }
    if kind not in allowed:
        raise SearchSpaceError(
            f"parameter {name!r}: unknown type {kind!r} (use 'float', 'int' or 'categorical')"
        )
    unknown = set(spec) - allowed[kind]
    if unknown:
        raise SearchSpaceError(
            f"parameter {name!r}: unknown keys {sorted(unknown)} for type {kind!r} "
            f"(valid: {sorted(allowed[kind])})"
        )
    if kind == "categorical":
        if "choices" not in spec or isinstance(spec["choices"], (str, bytes)):
            raise SearchSpaceError(f"parameter {name!r}: categorical needs a list 'choices'")
        return Categorical(spec["choices"])
    for key in ("low", "high"):
        if key not in spec:
            raise SearchSpaceError(f"parameter {name!r}: missing {key!r}")
    log = spec.get("log", False)
    if not isinstance(log, bool):
        raise SearchSpaceError(f"parameter {name!r}: 'log' must be true or false")
    if kind == "int":
        return Int(spec["low"], spec["high"], log)
    return Float(spec["low"], spec["high"], log)


class SearchSpace:
    """An ordered set of named parameters with vectorised encode/decode/repair/sample.

    Args:
        parameters: Parameter names and their specs (see ``parameter``), or a search space.

    Raises:
        SearchSpaceError: No parameters, or a spec that cannot be searched.
    """

    def __init__(self, parameters: Mapping[str, Any]) -> None:
        if isinstance(parameters, SearchSpace):
            parameters = parameters.parameters
        if not isinstance(parameters, Mapping):
            raise SearchSpaceError(
                f"a search space is a mapping of name -> spec, got {type(parameters).__name__}"
            )
        if len(parameters) == 0:
            raise SearchSpaceError("the search space has no parameters")
        self.parameters: dict[str, Parameter] = {
            name: parameter(name, spec) for name, spec in parameters.items()
        }
        self.names = list(self.parameters)
        kinds, lower, upper, logs = [], [], [], []
        for p in self.parameters.values():
            if isinstance(p, Categorical):
                kinds.append(CATEGORICAL)
                lower.append(0.0)
                upper.append(float(len(p.choices) - 1))
                logs.append(False)
            else:
                kinds.append(INT if isinstance(p, Int) else FLOAT)
                lower.append(math.log(p.low) if p.log else float(p.low))
                upper.append(math.log(p.high) if p.log else float(p.high))
                logs.append(p.log)
        self.kinds = np.array(kinds, dtype=np.int8)
        self.lower = np.array(lower)
        self.upper = np.array(upper)
        self.width = self.upper - self.lower
        self.is_log = np.array(logs, dtype=bool)
        self.numeric = self.kinds != CATEGORICAL
        self._lin_int = (self.kinds == INT) & ~self.is_log
        self._log_int = (self.kinds == INT) & self.is_log
        self._discrete = self.kinds == CATEGORICAL
        self._int_low = np.array([getattr(p, "low", 0) for p in self.parameters.values()])
        self._int_high = np.array([getattr(p, "high", 0) for p in self.parameters.values()])
        self.numeric_index = np.flatnonzero(self.numeric)
        self.categorical_index = np.flatnonzero(~self.numeric)
        self._round = self._lin_int | self._discrete
        self._even = self._round  # sampled uniformly over their values, bounds included
        self._any_even = bool(self._even.any())
        self._any_round = bool(self._round.any())
        self._any_log_int = bool(self._log_int.any())
        self._float_log = (self.kinds == FLOAT) & self.is_log
        self._any_float_log = bool(self._float_log.any())
        self._low = np.array([getattr(p, "low", 0.0) for p in self.parameters.values()], float)
        self._high = np.array([getattr(p, "high", 0.0) for p in self.parameters.values()], float)
        self._ints = [i for i, k in enumerate(kinds) if k == INT]
        self._categoricals = [
            (i, p.choices)
            for i, p in enumerate(self.parameters.values())
            if isinstance(p, Categorical)
        ]

    @property
    def dim(self) -> int:
        """Number of parameters."""
        return len(self.names)

    @property
    def has_categorical(self) -> bool:
        """Whether a parameter is categorical."""
        return len(self.categorical_index) > 0

    def repair(self, genes: np.ndarray) -> np.ndarray:
        """Clip into bounds and round integers/categoricals, in place; returns ``genes``.

        Args:
            genes: One gene vector or one per row, in internal coordinates.
        """
        np.minimum(np.maximum(genes, self.lower, out=genes), self.upper, out=genes)
        if self._any_round:
            mask = self._round
            genes[..., mask] = np.rint(genes[..., mask])
        if self._any_log_int:
            m = self._log_int
            ints = np.clip(np.rint(np.exp(genes[..., m])), self._int_low[m], self._int_high[m])
            genes[..., m] = np.log(ints)
        genes += 0.0  # turns -0.0 into 0.0 so that equal candidates have equal bytes
        return genes

    def sample(self, rng: np.random.Generator, n: int | None = None) -> np.ndarray:
        """Uniform samples in internal coordinates (log-uniform for log parameters).

        Args:
            rng: The random generator.
            n: Number of samples, one per row; ``None`` for one gene vector.
        """
        shape = (self.dim,) if n is None else (n, self.dim)
        genes = self.lower + rng.random(shape) * self.width
        if self._any_even:  # integers and categories: every value equally likely, bounds included
            even = self._even
            genes[..., even] = np.minimum(
                self.lower[even]
                + np.floor(rng.random(genes[..., even].shape) * (self.width[even] + 1)),
                self.upper[even],
            )
        return self.repair(genes)

    def sample_gene(self, rng: np.random.Generator, i: int) -> float:
        """One uniform value of parameter ``i`` (internal coordinates, not yet repaired).

        Args:
            rng: The random generator.
            i: Index of the parameter.
        """
        if self._even[i]:
            return float(
                min(self.lower[i] + int(rng.random() * (self.width[i] + 1)), self.upper[i])
            )
        return float(self.lower[i] + rng.random() * self.width[i])

    def decode(self, genes: np.ndarray) -> dict[str, Any]:
        """The parameter values of one gene vector, as plain Python objects.

        Args:
            genes: The gene vector.
        """
        values = np.array(genes, dtype=float)
        if self._any_float_log or self._any_log_int:
            log = self.is_log
            values[log] = np.minimum(
                np.maximum(np.exp(values[log]), self._low[log]), self._high[log]
            )
        out = dict(zip(self.names, values.tolist(), strict=True))
        for i in self._ints:
            out[self.names[i]] = round(out[self.names[i]])
        for i, choices in self._categoricals:
            out[self.names[i]] = choices[round(out[self.names[i]])]
        return out

    def decode_columns(self, genes: np.ndarray) -> dict[str, np.ndarray]:
        """Parameter values of many gene vectors (rows), one array per parameter.

        Args:
            genes: The gene vectors, one per row.
        """
        values = np.array(genes, dtype=float).reshape(-1, self.dim)
        log = self.is_log
        if log.any():
            values[:, log] = np.clip(np.exp(values[:, log]), self._low[log], self._high[log])
        out: dict[str, np.ndarray] = {}
        for i, (name, p) in enumerate(self.parameters.items()):
            if isinstance(p, Categorical):
                choices = np.empty(len(p.choices), dtype=object)
                choices[:] = p.choices
                out[name] = choices[np.rint(values[:, i]).astype(np.int64)]
            elif isinstance(p, Int):
                out[name] = np.rint(values[:, i]).astype(np.int64)
            else:
                out[name] = values[:, i]
        return out

    def encode(self, values: Mapping[str, Any]) -> np.ndarray:
        """Gene vector of a parameter dict (e.g. a known good configuration).

        Args:
            values: A value for every parameter.

        Raises:
            SearchSpaceError: Missing or extra names, or a value not among the choices.
        """
        missing = set(self.names) - set(values)
        extra = set(values) - set(self.names)
        if missing or extra:
            raise SearchSpaceError(
                f"values do not match the space: missing {sorted(missing)}, extra {sorted(extra)}"
            )
        genes = np.empty(self.dim)
        for i, (name, p) in enumerate(self.parameters.items()):
            v = values[name]
            if isinstance(p, Categorical):
                if v not in p.choices:
                    raise SearchSpaceError(f"parameter {name!r}: {v!r} is not in {p.choices}")
                genes[i] = p.choices.index(v)
            else:
                genes[i] = math.log(v) if p.log else float(v)
        return self.repair(genes)

    def to_unit(self, genes: np.ndarray) -> np.ndarray:
        """Internal coordinates -> [0, 1] per dimension (for scale-free propagators).

        Args:
            genes: Gene vectors in internal coordinates.
        """
        return (genes - self.lower) / self.width_or_one

    def from_unit(self, unit: np.ndarray) -> np.ndarray:
        """[0, 1] per dimension -> internal coordinates (the inverse of ``to_unit``).

        Args:
            unit: Gene vectors in unit coordinates.
        """
        return self.lower + unit * self.width_or_one

    @property
    def width_or_one(self) -> np.ndarray:
        """Each parameter's range in internal coordinates (1 where it is empty)."""
        return np.where(self.width > 0, self.width, 1.0)

    def to_dict(self) -> dict[str, Any]:
        """JSON/TOML-ready description; equal dicts mean equal spaces (checkpoint check)."""
        out: dict[str, Any] = {}
        for name, p in self.parameters.items():
            if isinstance(p, Categorical):
                out[name] = {"type": "categorical", "choices": list(p.choices)}
            else:
                out[name] = {
                    "type": _KIND_NAMES[INT if isinstance(p, Int) else FLOAT],
                    "low": p.low,
                    "high": p.high,
                    "log": p.log,
                }
        return out

    @classmethod
    def from_toml(cls, path: str | Any) -> SearchSpace:
        """Read ``[space]`` (or top-level) parameter specs from a TOML file.

        Args:
            path: The TOML file.

        Raises:
            SearchSpaceError: A missing or invalid file, or a spec that cannot be searched.
        """
        import importlib
        import sys
        from pathlib import Path

        # tomllib from Python 3.11 on; the tomli backport (a declared dependency) before
        tomllib = importlib.import_module("tomllib" if sys.version_info >= (3, 11) else "tomli")

        path = Path(path)
        if not path.is_file():
            raise SearchSpaceError(f"search space file {path} does not exist")
        try:
            data = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as error:
            raise SearchSpaceError(f"search space file {path}: {error}") from None
        return cls(data.get("space", data))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SearchSpace) and self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return hash(repr(self.to_dict()))

    def __repr__(self) -> str:
        return f"SearchSpace({self.parameters!r})"
