"""load_config: TOML, dicts and overrides into nested dataclasses, with errors naming the key."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Optional

import pytest

from shared_hpc.config import ConfigError, config_to_dict, load_config


@dataclass
class Optim:
    lr: float = 1e-3
    kind: Literal["adam", "sgd"] = "adam"
    betas: tuple[float, float] = (0.9, 0.999)


@dataclass
class Config:
    data: Path
    epochs: int = 10
    layers: list[int] = field(default_factory=lambda: [64, 64])
    seeds: tuple[int, ...] = (0,)
    name: Optional[str] = None  # noqa: UP045 (both spellings must work)
    checkpoint: Path | None = None
    tags: dict[str, str] = field(default_factory=dict)
    debug: bool = False
    optim: Optim = field(default_factory=Optim)


def test_toml_with_nested_tables_and_conversions(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text(
        'data = "inputs/era5.nc"\n'
        "epochs = 3\n"
        "seeds = [1, 2, 3]\n"
        'checkpoint = "ckpt.pt"\n'
        "[tags]\nsite = 'juwels'\n"
        "[optim]\nlr = 1\nkind = 'sgd'\nbetas = [0.5, 0.6]\n"
    )
    cfg = load_config(Config, path)
    assert cfg.data == Path("inputs/era5.nc") and isinstance(cfg.data, Path)
    assert cfg.epochs == 3 and cfg.seeds == (1, 2, 3) and cfg.checkpoint == Path("ckpt.pt")
    assert cfg.optim == Optim(lr=1.0, kind="sgd", betas=(0.5, 0.6))
    assert isinstance(cfg.optim.lr, float)
    assert cfg.tags == {"site": "juwels"} and cfg.layers == [64, 64] and cfg.name is None


def test_overrides_merge_into_nested_tables():
    cfg = load_config(Config, {"data": "x", "optim": {"kind": "sgd"}}, epochs=5, optim={"lr": 0.1})
    assert cfg.epochs == 5 and cfg.optim.kind == "sgd" and cfg.optim.lr == 0.1


def test_round_trip_through_config_to_dict():
    cfg = load_config(Config, {"data": "d", "name": "n", "seeds": [4]})
    plain = config_to_dict(cfg)
    assert (
        plain["data"] == "d" and plain["seeds"] == [4] and plain["optim"]["betas"] == [0.9, 0.999]
    )
    assert load_config(Config, plain) == cfg


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ({"data": "d", "epoch": 3}, r"unknown key 'epoch' in Config; valid keys: .*epochs"),
        ({"data": "d", "optim": {"momentum": 0.9}}, r"unknown key 'momentum' in Config.optim"),
        ({"data": "d", "epochs": "3"}, r"Config.epochs must be int, got str"),
        ({"data": "d", "epochs": True}, r"Config.epochs must be int"),
        ({"data": "d", "debug": 1}, r"Config.debug must be bool"),
        (
            {"data": "d", "optim": {"kind": "adamw"}},
            r"Config.optim.kind must be one of \['adam', 'sgd'\]",
        ),
        ({"data": "d", "optim": {"betas": [0.9]}}, r"Config.optim.betas must have 2 items"),
        ({"data": "d", "layers": [64, "wide"]}, r"Config.layers\[1\] must be int"),
        ({"data": "d", "name": 3}, r"Config.name must be"),
        ({"data": "d", "optim": 3}, r"Config.optim must be a table"),
        ({}, r"Config lacks the required key\(s\) data"),
    ],
)
def test_bad_values_name_the_field(source, message):
    with pytest.raises(ValueError, match=message):
        load_config(Config, source)


def test_bad_files(tmp_path):
    with pytest.raises(ConfigError, match=r"missing\.toml does not exist"):
        load_config(Config, tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("epochs = = 3\n")
    with pytest.raises(ValueError, match=r"bad\.toml is not valid TOML"):
        load_config(Config, bad)
    with pytest.raises(TypeError, match="dataclass"):
        load_config(dict, {})


def test_read_toml_gives_the_tables_or_one_line(tmp_path):
    from shared_hpc import read_toml

    good = tmp_path / "good.toml"
    good.write_text("rsectors = 4\n[scanner]\nradius_mm = 60.0\n")
    assert read_toml(good) == {"rsectors": 4, "scanner": {"radius_mm": 60.0}}
    with pytest.raises(ConfigError, match=r"missing\.toml does not exist"):
        read_toml(str(tmp_path / "missing.toml"))
    (tmp_path / "bad.toml").write_text("a = = 1\n")
    with pytest.raises(ConfigError, match=r"bad\.toml is not valid TOML"):
        read_toml(tmp_path / "bad.toml")


@dataclass
class Train:
    """Training settings.

    Attributes:
        batch_size: Samples per step
            and rank.
        schedule: Learning-rate schedule.
    """

    batch_size: int = 32
    schedule: Literal["cosine", "constant"] = "cosine"
    max_steps: int | None = None
    widths: list[int] = field(default_factory=lambda: [8, 8])
    shuffle: bool = True


@dataclass
class Run:
    """A run.

    Attributes:
        output: Where results go.
    """

    output: Path = Path("run")
    train: Train = field(default_factory=Train)
    tags: dict[str, str] = field(default_factory=dict)


def _parse(*argv: str):
    import argparse

    from shared_hpc.config import add_config_flags, config_from_args

    parser = argparse.ArgumentParser(prog="tool")
    parser.add_argument("data")
    add_config_flags(parser, Run)
    args = parser.parse_args(["data.nc", *argv])
    return parser, args, config_from_args(args)


def test_a_preset_lies_under_the_toml_file_and_the_flags(tmp_path):
    from shared_hpc.config import config_from_args

    path = tmp_path / "run.toml"
    path.write_text("[train]\nbatch_size = 4\n")
    preset = {"output": "preset", "train": {"batch_size": 2, "max_steps": 7}}
    _, args, _ = _parse("--config", str(path), "--train.max-steps", "9")
    cfg = config_from_args(args, base=preset)
    assert cfg.output == Path("preset")  # from the preset only
    assert cfg.train.batch_size == 4  # the file wins over the preset
    assert cfg.train.max_steps == 9  # the flag wins over both
    _, args, _ = _parse()
    assert config_from_args(args, base=preset).train.batch_size == 2


def test_every_field_gets_a_flag_named_after_its_table():
    parser, args, cfg = _parse()
    assert cfg == Run() and args.data == "data.nc"
    text = parser.format_help()
    flags = "--output --train.batch-size --train.schedule --train.max-steps --train.widths"
    for flag in [*flags.split(), "--train.shuffle", "--no-train.shuffle", "--config"]:
        assert flag in text
    assert "--tags" not in text  # a table of tables: TOML only
    assert "Samples per step and rank. (default: 32)" in " ".join(text.split())


def test_flags_override_the_toml_file_and_convert_their_values(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text('output = "from-file"\n[train]\nbatch_size = 4\nschedule = "constant"\n')
    _, _, cfg = _parse("--config", str(path), "--train.batch-size", "8", "--train.widths", "2,3",
                       "--no-train.shuffle", "--train.max-steps", "100")  # fmt: skip
    assert cfg.output == Path("from-file") and cfg.train.schedule == "constant"
    assert cfg.train == Train(batch_size=8, schedule="constant", max_steps=100, widths=[2, 3],
                              shuffle=False)  # fmt: skip
    _, _, cfg = _parse("--train.max-steps", "none")
    assert cfg.train.max_steps is None


def test_bad_flag_values_stop_in_argparse(capsys):
    with pytest.raises(SystemExit) as stop:
        _parse("--train.schedule", "linear")
    assert stop.value.code == 2
    assert "invalid choice: 'linear'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        _parse("--train.batch-size", "many")


def test_validation_errors_become_config_errors():
    @dataclass
    class Positive:
        n: int = 1

        def __post_init__(self) -> None:
            if self.n < 1:
                raise ValueError("n must be at least 1")

    with pytest.raises(ConfigError, match="at least 1"):
        load_config(Positive, n=0)


def test_fields_may_share_the_names_of_load_configs_arguments():
    @dataclass
    class Acquisition:
        source: str = "point"
        cls: int = 0

    assert load_config(Acquisition, None, source="line", cls=2) == Acquisition("line", 2)


def test_help_of_inherited_fields_comes_from_the_base_class():
    import argparse

    from shared_hpc.config import add_config_flags

    @dataclass
    class Base:
        """Base settings.

        Attributes:
            seed: Seed of everything.
        """

        seed: int = 0

    @dataclass
    class Derived(Base):
        """More settings.

        Attributes:
            steps: Steps to take.
        """

        steps: int = 3

    parser = argparse.ArgumentParser()
    add_config_flags(parser, Derived)
    text = " ".join(parser.format_help().split())
    assert "Seed of everything. (default: 0)" in text and "Steps to take. (default: 3)" in text


def test_a_nested_default_keeps_its_values_where_a_flag_changes_another():
    @dataclass
    class Demo:
        """The demo.

        Attributes:
            train: How the demo trains.
        """

        train: Train = field(default_factory=lambda: Train(batch_size=8, schedule="constant"))

    import argparse

    from shared_hpc.config import add_config_flags, config_from_args

    parser = argparse.ArgumentParser()
    add_config_flags(parser, Demo)
    cfg = config_from_args(parser.parse_args(["--train.max-steps", "5"]))
    assert cfg.train == Train(batch_size=8, schedule="constant", max_steps=5)
    assert load_config(Demo, {"train": {"shuffle": False}}).train.batch_size == 8
    text = " ".join(parser.format_help().split())
    assert "Samples per step and rank. (default: 8)" in text
    assert "(default: 8,8)" in text  # a default_factory's value is shown too
