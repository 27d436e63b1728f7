"""Configuration dataclasses loaded from TOML or dicts, with errors that name the bad key.

Every package keeps its settings in (nested) dataclasses. :func:`load_config` fills one from a
TOML file, a dict or keyword overrides and checks every value against the field's type before
any work starts: an unknown key, a string where a number belongs or a value outside a
``Literal`` raises ``ValueError`` naming the field and what would be valid.
"""

from __future__ import annotations

import dataclasses
import enum
import sys
import types
import typing
from collections.abc import Mapping
from pathlib import Path, PurePath
from typing import Any, TypeVar

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

__all__ = ["config_to_dict", "load_config"]

T = TypeVar("T")


def load_config(
    cls: type[T], source: str | Path | Mapping[str, Any] | None = None, **overrides: Any
) -> T:
    """Build the dataclass ``cls`` from ``source`` (a TOML path, a dict or ``None``) and overrides.

    Overrides win over ``source``; a dict given for a nested dataclass field is merged into it,
    so ``load_config(Cfg, "run.toml", train={"epochs": 3})`` changes only ``train.epochs``.

    Raises:
        ValueError: unknown key, wrong type, missing required field, or unreadable TOML.
        FileNotFoundError: ``source`` names a file that does not exist.
    """
    if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
        raise TypeError(f"load_config needs a dataclass type, got {cls!r}")
    if source is None:
        data: dict[str, Any] = {}
    elif isinstance(source, Mapping):
        data = dict(source)
    elif isinstance(source, (str, PurePath)):
        data = _read_toml(Path(source))
    else:
        raise TypeError(
            f"config source must be a path, a dict or None, got {type(source).__name__}"
        )
    return _build(cls, _merge(data, overrides), cls.__name__)


def _read_toml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise FileNotFoundError(f"config file {path} does not exist")
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except tomllib.TOMLDecodeError as err:
        raise ValueError(f"{path} is not valid TOML: {err}") from None


def _merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _merge(dict(merged[key]), value)
        else:
            merged[key] = value
    return merged


def _build(cls: type[T], data: Any, where: str) -> T:
    if isinstance(data, cls):
        return data
    if not isinstance(data, Mapping):
        raise ValueError(f"{where} must be a table of settings, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}  # type: ignore[arg-type]
    unknown = [k for k in data if k not in fields]
    if unknown:
        raise ValueError(
            f"unknown key {unknown[0]!r} in {where}; valid keys: {', '.join(sorted(fields))}"
        )
    hints = typing.get_type_hints(cls)
    missing = [
        name
        for name, f in fields.items()
        if name not in data
        and f.default is dataclasses.MISSING
        and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise ValueError(f"{where} lacks the required key(s) {', '.join(missing)}")
    values = {k: _convert(hints[k], v, f"{where}.{k}") for k, v in data.items()}
    return cls(**values)


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _convert(tp: Any, value: Any, where: str) -> Any:
    """``value`` checked against ``tp`` (paths, tuples and nested dataclasses converted)."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is Any:
        return value
    if origin is typing.Union or origin is types.UnionType:
        if value is None and type(None) in args:
            return None
        for option in (a for a in args if a is not type(None)):
            try:
                return _convert(option, value, where)
            except ValueError:
                continue
        raise ValueError(f"{where} must be {_type_name(tp)}, got {value!r}")
    if origin is typing.Literal:
        if value not in args:
            raise ValueError(f"{where} must be one of {list(args)}, got {value!r}")
        return value
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        return _build(tp, value, where)
    if origin in (list, tuple, dict) or tp in (list, tuple, dict):
        return _convert_container(origin or tp, args, value, where)
    if isinstance(tp, type):
        return _convert_scalar(tp, value, where)
    return value


def _convert_container(kind: type, args: tuple[Any, ...], value: Any, where: str) -> Any:
    if kind is dict:
        if not isinstance(value, Mapping):
            raise ValueError(f"{where} must be a table, got {value!r}")
        val_tp = args[1] if len(args) == 2 else Any
        return {str(k): _convert(val_tp, v, f"{where}.{k}") for k, v in value.items()}
    if not isinstance(value, (list, tuple)):
        raise ValueError(f"{where} must be a list, got {value!r}")
    if kind is list:
        item_tp = args[0] if args else Any
        return [_convert(item_tp, v, f"{where}[{i}]") for i, v in enumerate(value)]
    if not args or (len(args) == 2 and args[1] is Ellipsis):
        item_tp = args[0] if args else Any
        return tuple(_convert(item_tp, v, f"{where}[{i}]") for i, v in enumerate(value))
    if len(value) != len(args):
        raise ValueError(f"{where} must have {len(args)} items, got {len(value)}")
    return tuple(
        _convert(t, v, f"{where}[{i}]") for i, (t, v) in enumerate(zip(args, value, strict=True))
    )


def _convert_scalar(tp: type, value: Any, where: str) -> Any:
    if issubclass(tp, PurePath):
        if isinstance(value, (str, PurePath)):
            return tp(value)
    elif issubclass(tp, enum.Enum):
        try:
            return tp(value)
        except ValueError:
            valid = [m.value for m in tp]
            raise ValueError(f"{where} must be one of {valid}, got {value!r}") from None
    elif tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif isinstance(value, tp):
        return value
    raise ValueError(f"{where} must be {tp.__name__}, got {type(value).__name__} {value!r}")


def config_to_dict(obj: Any) -> Any:
    """A dataclass config as plain JSON/TOML values (paths as strings, tuples as lists)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: config_to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, Mapping):
        return {str(k): config_to_dict(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [config_to_dict(v) for v in obj]
    if isinstance(obj, PurePath):
        return str(obj)
    if isinstance(obj, enum.Enum):
        return obj.value
    return obj
