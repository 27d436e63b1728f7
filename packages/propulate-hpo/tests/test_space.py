import math

import numpy as np
import pytest
from propulate_hpo import Categorical, Float, Int, SearchSpace, SearchSpaceError


def test_short_forms_give_typed_parameters():
    space = SearchSpace({"x": (-1.0, 1.0), "n": (1, 10), "act": ("relu", "tanh")})
    assert space.parameters == {
        "x": Float(-1.0, 1.0),
        "n": Int(1, 10),
        "act": Categorical(["relu", "tanh"]),
    }


def test_toml_style_mappings_and_log_scale():
    space = SearchSpace(
        {
            "lr": {"type": "float", "low": 1e-5, "high": 1e-1, "log": True},
            "width": {"type": "int", "low": 16, "high": 512, "log": True},
            "batch": {"type": "categorical", "choices": [16, 32, 64]},
        }
    )
    assert space.parameters["lr"] == Float(1e-5, 1e-1, log=True)
    assert np.allclose(space.lower[:2], [math.log(1e-5), math.log(16)])
    genes = space.sample(np.random.default_rng(0), 4000)
    lr = np.array([space.decode(g)["lr"] for g in genes])
    # log-uniform: each decade gets about a quarter of the samples
    decades = np.histogram(np.log10(lr), bins=[-5, -4, -3, -2, -1])[0] / len(lr)
    assert np.all(np.abs(decades - 0.25) < 0.04)
    widths = {space.decode(g)["width"] for g in genes}
    assert min(widths) >= 16 and max(widths) <= 512 and all(isinstance(w, int) for w in widths)
    assert {space.decode(g)["batch"] for g in genes} == {16, 32, 64}


def test_encode_decode_round_trip_and_repair_is_canonical():
    space = SearchSpace(
        {
            "a": Float(0.1, 10.0, log=True),
            "b": Int(2, 64, log=True),
            "c": Int(-3, 3),
            "d": Categorical(["x", "y", "z"]),
        }
    )
    values = {"a": 0.5, "b": 17, "c": -2, "d": "z"}
    genes = space.encode(values)
    decoded = space.decode(genes)
    assert decoded["b"] == 17 and decoded["c"] == -2 and decoded["d"] == "z"
    assert decoded["a"] == pytest.approx(0.5)
    # values that decode alike repair to identical bytes (how duplicates are found)
    nudged = genes + np.array([0.0, 1e-6, 0.2, -0.3])
    assert space.repair(nudged).tobytes() == genes.tobytes()
    outside = space.repair(np.array([100.0, 100.0, 100.0, 100.0]))
    assert space.decode(outside) == {"a": 10.0, "b": 64, "c": 3, "d": "z"}
    assert space.repair(np.array([-0.0, math.log(2), 0.0, 0.0]).copy())[2].tobytes() == (
        np.float64(0.0).tobytes()
    )


def test_ints_and_categories_are_uniform_including_bounds():
    space = SearchSpace({"n": (1, 3), "c": ("a", "b")})
    genes = space.sample(np.random.default_rng(1), 6000)
    counts = np.unique(genes[:, 0], return_counts=True)[1] / 6000
    assert np.allclose(counts, 1 / 3, atol=0.03)
    assert np.allclose(np.unique(genes[:, 1], return_counts=True)[1] / 6000, 0.5, atol=0.03)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"x": (1.0, 1.0)}, "empty range"),
        ({"x": (2.0, 1.0)}, "low"),
        ({"x": (5, 1)}, "low"),
        ({"x": Float(0.0, 1.0, log=True)}, "log scale needs positive"),
        ({"x": Int(-4, 8, log=True)}, "log scale needs positive"),
        ({"x": {"type": "float", "low": 0.0, "high": 1.0, "log": True}}, "positive"),
        ({"x": {"type": "floaty", "low": 0, "high": 1}}, "unknown type 'floaty'"),
        ({"x": {"type": "float", "low": 0}}, "missing 'high'"),
        ({"x": {"type": "float", "low": 0, "high": 1, "step": 2}}, "unknown keys"),
        ({"x": {"type": "categorical"}}, "choices"),
        ({"x": Categorical([])}, "at least one choice"),
        ({"x": ("a", "a")}, "duplicate"),
        ({"x": (0.0, math.inf)}, "finite"),
        ({"x": (True, 3)}, "neither"),
        ({"x": []}, "empty list"),
        ({"x": "abc"}, "cannot read"),
        ({"x": Int(0.5, 3)}, "integers"),
        ({"_x": (0.0, 1.0)}, "reserved"),
        ({}, "no parameters"),
    ],
)
def test_bad_search_spaces_are_refused_with_a_clear_error(spec, message):
    with pytest.raises(SearchSpaceError, match=message):
        SearchSpace(spec)


def test_encode_refuses_values_that_do_not_fit():
    space = SearchSpace({"x": (0.0, 1.0), "c": ("a", "b")})
    with pytest.raises(SearchSpaceError, match="missing"):
        space.encode({"x": 0.5})
    with pytest.raises(SearchSpaceError, match="not in"):
        space.encode({"x": 0.5, "c": "q"})


def test_search_space_from_toml(tmp_path):
    path = tmp_path / "space.toml"
    path.write_text(
        '[space]\nlr = {type = "float", low = 1e-4, high = 0.1, log = true}\n'
        'dropout = [0.0, 0.5]\noptimizer = ["adam", "sgd"]\nlayers = [1, 4]\n'
    )
    space = SearchSpace.from_toml(path)
    assert space.names == ["lr", "dropout", "optimizer", "layers"]
    assert space.parameters["layers"] == Int(1, 4)
    assert SearchSpace(space.to_dict()) == space
    bad = tmp_path / "bad.toml"
    bad.write_text("[space]\nlr = {type = 'float', low = 0.1, high = 0.01}\n")
    with pytest.raises(SearchSpaceError, match="low"):
        SearchSpace.from_toml(bad)
    with pytest.raises(SearchSpaceError, match="does not exist"):
        SearchSpace.from_toml(tmp_path / "missing.toml")
