import numpy as np
import pytest
from propulate_hpo import BENCHMARKS, benchmark
from propulate_hpo.functions import quartic

PAPER = {  # name: (dimension, low, high) as in the Propulate paper
    "sphere": (2, -5.12, 5.12),
    "rosenbrock": (2, -2.048, 2.048),
    "step": (5, -5.12, 5.12),
    "quartic": (30, -1.28, 1.28),
    "rastrigin": (20, -5.12, 5.12),
    "griewank": (10, -600.0, 600.0),
    "schwefel": (10, -500.0, 500.0),
    "bisphere": (30, -5.12, 5.12),
    "birastrigin": (30, -5.12, 5.12),
    "eggcrate": (2, -5.0, 5.0),
    "himmelblau": (2, -6.0, 6.0),
    "keane": (2, 0.0, 10.0),
    "leon": (2, 0.0, 10.0),
}


def test_all_fourteen_functions_are_there():
    assert set(BENCHMARKS) == set(PAPER) | {"bukin"}


@pytest.mark.parametrize("name", sorted(PAPER))
def test_domains_and_dimensions_are_the_papers(name):
    dim, low, high = PAPER[name]
    _, space = benchmark(name)
    assert space.dim == dim
    assert np.all(space.lower == low) and np.all(space.upper == high)


def test_bukin_domain():
    _, space = benchmark("bukin")
    assert list(space.lower) == [-15.0, -3.0] and list(space.upper) == [-5.0, 3.0]


@pytest.mark.parametrize("name", sorted(set(BENCHMARKS) - {"quartic"}))
def test_optimum_value_at_the_optimum_location(name):
    b = BENCHMARKS[name]
    x = b.optimum_location()
    assert b.function(x) == pytest.approx(b.optimum, abs=1e-9)
    # and nothing in a random sample of the domain is better
    lo, hi = np.array(b.domain()).T
    samples = np.random.default_rng(0).uniform(lo, hi, size=(2000, b.dim))
    assert min(b.function(s) for s in samples) >= b.optimum - 1e-12


def test_known_values_away_from_the_optimum():
    assert BENCHMARKS["rastrigin"].function(np.ones(20)) == pytest.approx(20.0)
    assert BENCHMARKS["rosenbrock"].function(np.zeros(2)) == pytest.approx(1.0)
    assert BENCHMARKS["himmelblau"].function(np.array([-2.805118, 3.131312])) < 1e-9
    assert BENCHMARKS["step"].function(np.full(5, 0.9)) == 0.0
    assert BENCHMARKS["schwefel"].function(np.zeros(10)) == pytest.approx(4189.828872724339)


def test_quartic_is_noisy_but_centred():
    rng = np.random.default_rng(0)
    values = [quartic(np.zeros(30), rng) for _ in range(200)]
    assert np.std(values) > 0.5  # the noise term: a fresh draw per call
    assert quartic(np.ones(30), rng) > 400  # sum of i for i = 1..30 is 465


def test_loss_takes_a_parameter_dict_and_dimension_can_change():
    loss, space = benchmark("sphere", dim=5)
    assert space.dim == 5
    assert loss({f"x{i}": 1.0 for i in range(5)}) == 5.0
    with pytest.raises(ValueError, match="unknown benchmark"):
        benchmark("spherez")
    with pytest.raises(ValueError, match="defined in 2 dimensions"):
        benchmark("himmelblau", dim=3)
