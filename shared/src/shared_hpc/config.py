"""Configuration: dataclasses loaded from TOML, overridden field by field from the command line.

Every package keeps its settings in (nested) dataclasses that validate themselves in
``__post_init__``. ``load_config`` fills one from a TOML file, a dict or keyword overrides and
checks every value against the field's type before any work starts: an unknown key, a string
where a number belongs or a value outside a ``Literal`` raises ``ConfigError`` naming the field
and what would be valid. ``add_config_flags`` gives a command one flag per field
(``--epochs``, ``--train.batch-size``), generated from the dataclass and its docstring, and
``config_from_args`` builds the config from ``--config FILE`` and the flags given, so every
setting is reachable from the command line without hand mapping.
"""

from __future__ import annotations

import argparse
import dataclasses
import enum
import inspect
import re
import sys
import types
import typing
from collections.abc import Callable, Mapping
from pathlib import Path, PurePath
from typing import Any, TypeVar

from shared_hpc.errors import UserError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

__all__ = [
    "ConfigError",
    "add_config_flags",
    "config_from_args",
    "config_to_dict",
    "load_config",
    "read_toml",
]


class ConfigError(UserError):
    """A setting that is unknown, of the wrong type, or refused by the config's validation."""


T = TypeVar("T")


def load_config(
    cls: type[T], source: str | Path | Mapping[str, Any] | None = None, /, **overrides: Any
) -> T:
    """Build the dataclass ``cls`` from ``source`` and overrides, every value checked.

    Overrides win over ``source``; a dict given for a nested dataclass field is merged into it,
    so ``load_config(Cfg, "run.toml", train={"epochs": 3})`` changes only ``train.epochs``.

    Args:
        cls: The config dataclass (positional, so that a field may be called ``cls``).
        source: A TOML file, a dict of settings, or ``None`` for the defaults (positional, so
            that a field may be called ``source``).
        **overrides: Settings that win over ``source``.

    Raises:
        ConfigError: Unknown key, wrong type, missing required field, a value the dataclass's
            ``__post_init__`` refuses, or a TOML file that is missing or unreadable.
    """
    if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
        raise TypeError(f"load_config needs a dataclass type, got {cls!r}")
    if source is None:
        data: dict[str, Any] = {}
    elif isinstance(source, Mapping):
        data = dict(source)
    elif isinstance(source, (str, PurePath)):
        data = read_toml(source)
    else:
        raise TypeError(
            f"config source must be a path, a dict or None, got {type(source).__name__}"
        )
    return _build(cls, _merge(data, overrides), cls.__name__)


def read_toml(path: str | PurePath) -> dict[str, Any]:
    """The tables of a TOML file, for a package that derives settings before ``load_config``.

    Raises:
        ConfigError: The file is missing or not valid TOML (one line).
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path} is not valid TOML: {err}") from None


def _merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _merge(dict(merged[key]), value)
        else:
            merged[key] = value
    return merged


def _default(f: dataclasses.Field) -> Any:
    """A field's default value (``MISSING`` if it has none)."""
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return f.default


def _over_default(f: dataclasses.Field, value: Any) -> Any:
    """A table given for a nested config changes its default only where it says, so that a
    default such as ``field(default_factory=lambda: Train(steps=280))`` keeps its other values."""
    default = _default(f)
    if isinstance(value, Mapping) and dataclasses.is_dataclass(default):
        return _merge(_settings(default), value)
    return value


def _settings(obj: Any) -> dict[str, Any]:
    """The constructor arguments of a config dataclass, nested tables as dicts."""
    return {
        f.name: _settings(v) if dataclasses.is_dataclass(v := getattr(obj, f.name)) else v
        for f in dataclasses.fields(obj)
        if f.init
    }


def _build(cls: type[T], data: Any, where: str) -> T:
    if isinstance(data, cls):
        return data
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where} must be a table of settings, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}  # type: ignore[arg-type]
    unknown = [k for k in data if k not in fields]
    if unknown:
        raise ConfigError(
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
        raise ConfigError(f"{where} lacks the required key(s) {', '.join(missing)}")
    values = {
        k: _convert(hints[k], _over_default(fields[k], v), f"{where}.{k}") for k, v in data.items()
    }
    try:
        return cls(**values)
    except ConfigError:
        raise
    except ValueError as err:  # the dataclass's own validation
        raise ConfigError(str(err)) from None


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
        raise ConfigError(f"{where} must be {_type_name(tp)}, got {value!r}")
    if origin is typing.Literal:
        if value not in args:
            raise ConfigError(f"{where} must be one of {list(args)}, got {value!r}")
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
            raise ConfigError(f"{where} must be a table, got {value!r}")
        val_tp = args[1] if len(args) == 2 else Any
        return {str(k): _convert(val_tp, v, f"{where}.{k}") for k, v in value.items()}
    if not isinstance(value, (list, tuple)):
        raise ConfigError(f"{where} must be a list, got {value!r}")
    if kind is list:
        item_tp = args[0] if args else Any
        return [_convert(item_tp, v, f"{where}[{i}]") for i, v in enumerate(value)]
    if not args or (len(args) == 2 and args[1] is Ellipsis):
        item_tp = args[0] if args else Any
        return tuple(_convert(item_tp, v, f"{where}[{i}]") for i, v in enumerate(value))
    if len(value) != len(args):
        raise ConfigError(f"{where} must have {len(args)} items, got {len(value)}")
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
            raise ConfigError(f"{where} must be one of {valid}, got {value!r}") from None
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
    raise ConfigError(f"{where} must be {tp.__name__}, got {type(value).__name__} {value!r}")


def config_to_dict(obj: Any) -> Any:
    """A dataclass config as plain JSON/TOML values (paths as strings, tuples as lists).

    Args:
        obj: A config dataclass (or a dict, list or value inside one).
    """
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


# --- command-line flags -----------------------------------------------------------------------
_CLASS = "_config_class"
_PATHS = "_config_paths"


def _attribute_docs(cls: type) -> dict[str, str]:
    """Field descriptions from the ``Attributes:`` sections of a Google-style class docstring
    and of its base classes' (a subclass's own description wins)."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        docs.update(_own_attribute_docs(klass))
    return docs


def _own_attribute_docs(cls: type) -> dict[str, str]:
    doc = inspect.cleandoc(cls.__dict__.get("__doc__") or "")
    docs: dict[str, str] = {}
    lines = doc.splitlines()
    if "Attributes:" not in lines:
        return docs
    current = None
    for line in lines[lines.index("Attributes:") + 1 :]:
        if line and not line.startswith(" "):
            break  # the next section
        entry = re.match(r"^    (\w+)(?: \(.*?\))?: (.*)$", line)
        if entry:
            current = entry.group(1)
            docs[current] = entry.group(2).strip()
        elif current and line.strip():
            docs[current] += " " + line.strip()
    return docs


def _nullable(convert: Callable[[str], Any]) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        return None if text.lower() == "none" else convert(text)

    parse.__name__ = getattr(convert, "__name__", "value")
    return parse


def _items(convert: Callable[[str], Any]) -> Callable[[str], list[Any]]:
    def parse(text: str) -> list[Any]:
        return [convert(item.strip()) for item in text.split(",") if item.strip()]

    parse.__name__ = "list"
    return parse


def _flag_options(tp: Any) -> dict[str, Any] | None:
    """argparse options for a field of type ``tp``; ``None`` where TOML is the only way."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is typing.Union or origin is types.UnionType:
        options = [a for a in args if a is not type(None)]
        if len(options) != 1:
            return None
        inner = _flag_options(options[0])
        if inner is None or "type" not in inner:
            return inner
        return {**inner, "type": _nullable(inner["type"])}
    if tp is bool:
        return {"action": argparse.BooleanOptionalAction}
    if origin is typing.Literal:
        return {"choices": list(args), "type": type(args[0])}
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return {"choices": [m.value for m in tp], "type": type(next(iter(tp)).value)}
    if tp in (int, float, str) or (isinstance(tp, type) and issubclass(tp, PurePath)):
        return {"type": tp}
    if origin in (list, tuple) and args:
        items = {a for a in args if a is not Ellipsis}
        if len(items) == 1 and next(iter(items)) in (int, float, str):
            return {"type": _items(next(iter(items))), "metavar": "A,B,..."}
    return None


def _table_type(tp: Any) -> type | None:
    """The dataclass of a field that holds one nested table (``Optim`` or ``Optim | None``)."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(tp) if a is not type(None)]
        tp = options[0] if len(options) == 1 else None
    return tp if isinstance(tp, type) and dataclasses.is_dataclass(tp) else None


def _leaf_fields(
    cls: type, prefix: str = "", defaults: Any = None
) -> list[tuple[str, dict[str, Any], str]]:
    """(dotted name, argparse options, help) of every field reachable as a flag; ``defaults``
    is the instance whose values a nested table starts from (its field's default)."""
    hints = typing.get_type_hints(cls)
    docs = _attribute_docs(cls)
    found = []
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        tp = hints[f.name]
        default = _default(f) if defaults is None else getattr(defaults, f.name)
        nested = _table_type(tp)
        if nested is not None:
            start = default if isinstance(default, nested) else None
            found += _leaf_fields(nested, f"{prefix}{f.name}.", start)
            continue
        options = _flag_options(tp)
        if options is None:
            continue
        text = docs.get(f.name, "")
        if default is not dataclasses.MISSING and default is not None:
            shown = config_to_dict(default)
            shown = ",".join(map(str, shown)) if isinstance(shown, list) else shown
            text = f"{text} (default: {shown})".strip()
        found.append((prefix + f.name, options, text.replace("%", "%%")))
    return found


def add_config_flags(
    parser: argparse.ArgumentParser, cls: type, *, title: str = "settings"
) -> None:
    """Give ``parser`` ``--config TOML`` and one flag per setting of the dataclass ``cls``.

    Top-level fields become ``--name``, fields of nested dataclasses ``--section.name`` (with
    ``-`` for ``_``); booleans get ``--name/--no-name``, lists ``A,B,...``, optional values
    accept ``none``. The help text comes from the ``Attributes:`` section of each dataclass's
    docstring. Flags default to "not given", so a TOML value stays unless a flag overrides it;
    ``config_from_args`` builds the config. Fields that hold tables of tables (e.g. a list of
    dataclasses) are reachable through TOML only.

    Args:
        parser: The (sub)command's parser.
        cls: The config dataclass.
        title: Heading of the flags in ``--help``.
    """
    if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
        raise TypeError(f"add_config_flags needs a dataclass type, got {cls!r}")
    fields = _leaf_fields(cls)
    parser.set_defaults(**{_CLASS: cls, _PATHS: [name for name, _, _ in fields]})
    group = parser.add_argument_group(
        title, "TOML file and flags; a flag wins over the file, the file over the default"
    )
    group.add_argument("--config", type=Path, metavar="TOML", help="settings file")
    for name, options, text in fields:
        flag = "--" + name.replace("_", "-")
        group.add_argument(flag, dest=name, default=argparse.SUPPRESS, help=text, **options)


def config_from_args(args: argparse.Namespace, base: Mapping[str, Any] | None = None) -> Any:
    """The config of a command whose parser got ``add_config_flags``: TOML, then the flags.

    Args:
        args: The parsed arguments.
        base: Settings under the TOML file, e.g. the defaults of a preset the user chose
            (``--recipe``); the file wins over them, the flags over both.

    Raises:
        ConfigError: A setting is unknown, of the wrong type or refused by the dataclass.
    """
    cls = getattr(args, _CLASS)
    overrides: dict[str, Any] = {}
    for name in getattr(args, _PATHS):
        if hasattr(args, name):
            *sections, key = name.split(".")
            table = overrides
            for section in sections:
                table = table.setdefault(section, {})
            table[key] = getattr(args, name)
    source = getattr(args, "config", None)
    if base is None:
        return load_config(cls, source, **overrides)
    from_file = read_toml(source) if source is not None else {}
    return load_config(cls, _merge(dict(base), from_file), **overrides)
