"""Physics checks of the simulator: each compares simulated numbers with a closed form."""

import numpy as np
import pytest
from petnet.classical import gate_sorter
from petnet.scanner import preset
from petnet.sim import SimulationConfig, Source, simulate
from petnet.sim.detector import dead_time_mask, hit_crystals
from petnet.sim.physics import (
    acollinear_partner,
    isotropic_directions,
    sample_klein_nishina,
    water_attenuation_per_mm,
)

FWHM = 2.0 * np.sqrt(2.0 * np.log(2.0))


def angle_deg(a, b):
    return np.degrees(np.arccos(np.clip(np.sum(a * b, axis=1), -1.0, 1.0)))


def test_photons_are_back_to_back_within_the_acollinearity():
    rng = np.random.default_rng(0)
    first = isotropic_directions(rng, 200_000)
    second = acollinear_partner(rng, first, fwhm_deg=0.5)
    deviation = angle_deg(first, -second)
    sigma = 0.5 / FWHM
    # a 2-D Gaussian deviation has a Rayleigh magnitude: mean σ·√(π/2)
    assert deviation.mean() == pytest.approx(sigma * np.sqrt(np.pi / 2), rel=0.02)
    assert np.quantile(deviation, 0.999) < 3.8 * sigma
    exact = acollinear_partner(rng, first[:1000], fwhm_deg=0.0)
    assert np.allclose(exact, -first[:1000], atol=1e-9)


def test_energy_peak_is_511_kev_with_the_configured_resolution():
    scanner = preset("small", energy_resolution=0.10, energy_threshold_kev=0.0)
    singles = simulate(
        SimulationConfig(scanner=scanner, sources=(Source(activity_bq=5e7),), duration_s=2e-3)
    )
    assert not singles.scattered.any()
    energy = singles.energy_kev.astype(float)
    assert np.median(energy) == pytest.approx(511.0, abs=1.0)
    fwhm = energy.std() * FWHM
    assert fwhm == pytest.approx(0.10 * 511.0, rel=0.05)


def test_randoms_rate_matches_two_tau_s1_s2_for_independent_sources():
    scanner = preset("small", dead_time_ns=0.0)
    sources = (
        Source(activity_bq=1e8, position_mm=(-20.0, 0.0, 0.0)),
        Source(activity_bq=1e8, position_mm=(20.0, 0.0, 0.0)),
    )
    duration = 4e-3
    singles = simulate(SimulationConfig(scanner=scanner, sources=sources, duration_s=duration))
    tau = 4.0
    s1 = np.sum(singles.source_id == 0) / duration
    s2 = np.sum(singles.source_id == 1) / duration
    pairs = gate_sorter(singles, tau, "takeAllGoods", energy_window=None, min_transaxial_mm=0.0)
    cross = singles.source_id[pairs.first] != singles.source_id[pairs.second]
    expected = 2 * tau * 1e-9 * s1 * s2 * duration
    assert expected > 2000
    assert cross.sum() == pytest.approx(expected, rel=0.06)


def test_delayed_window_estimates_the_randoms_among_the_prompts():
    singles = simulate(
        SimulationConfig(
            scanner=preset("small"), sources=(Source(activity_bq=3e8),), duration_s=2e-3, seed=4
        )
    )
    pairs = gate_sorter(singles, 4.0, "takeAllGoods", energy_window=None, delayed_offset_ns=100.0)
    randoms = pairs.classify(singles)["randoms"]
    assert randoms > 10_000
    assert pairs.delayed == pytest.approx(randoms, rel=0.05)


@pytest.mark.parametrize("model", ["non-paralysable", "paralysable"])
def test_dead_time_losses_follow_the_model_for_a_poisson_stream(model):
    rng = np.random.default_rng(1)
    scanner = preset("small", dead_time_ns=100.0, dead_time_model=model)
    for rate_per_ns in (0.002, 0.01, 0.02):  # n·τ = 0.2, 1, 2
        n = 200_000
        time = np.cumsum(rng.exponential(1.0 / rate_per_ns, n))
        kept = dead_time_mask(scanner, time, np.zeros(n, dtype=np.int64)).sum()
        x = rate_per_ns * scanner.dead_time_ns
        expected = 1.0 / (1.0 + x) if model == "non-paralysable" else np.exp(-x)
        assert kept / n == pytest.approx(expected, rel=0.02)


def test_dead_time_in_the_simulator_matches_per_crystal_model():
    base = SimulationConfig(
        scanner=preset("small", dead_time_ns=0.0),
        sources=(Source(activity_bq=4e8),),
        duration_s=1e-3,
        seed=3,
    )
    free = simulate(base)
    tau = 2000.0
    dead = simulate(
        SimulationConfig(
            scanner=preset("small", dead_time_ns=tau), sources=base.sources, duration_s=1e-3, seed=3
        )
    )
    rate = np.bincount(free.crystal, minlength=free.scanner.n_crystals) / 1e6  # per ns
    expected = np.sum(rate * 1e6 / (1.0 + rate * tau))
    assert len(dead) < 0.8 * len(free)
    assert len(dead) == pytest.approx(expected, rel=0.03)


def test_photons_from_the_centre_hit_the_crystal_they_point_at():
    scanner = preset("small")
    origin = np.zeros((3, 3))
    direction = np.array([[1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0]])
    crystal, distance = hit_crystals(scanner, origin, direction)
    middle_ring = scanner.n_rings // 2
    k = scanner.crystals_per_ring
    assert crystal.tolist() == [middle_ring * k, middle_ring * k + k // 4, -1]
    assert distance[:2] == pytest.approx([scanner.radius_mm] * 2)


def test_compton_physics_of_water():
    assert water_attenuation_per_mm(np.array([511.0]))[0] == pytest.approx(0.0096, rel=0.02)
    rng = np.random.default_rng(2)
    cos_theta, energy = sample_klein_nishina(rng, np.full(400_000, 511.0))
    # mean cos θ of the Klein–Nishina distribution at 511 keV, by quadrature
    grid = np.linspace(-1, 1, 20001)
    p = 1.0 / (2.0 - grid)
    density = p**2 * (p + 1 / p - (1 - grid**2))
    assert cos_theta.mean() == pytest.approx(np.sum(grid * density) / np.sum(density), abs=0.004)
    backscatter = energy[cos_theta < -0.999]
    assert backscatter.mean() == pytest.approx(511.0 / 3.0, rel=0.01)
    assert np.all(energy <= 511.0)


def test_scatter_in_water_lowers_energy_and_is_flagged(train_singles):
    scattered = train_singles.scattered
    assert 0.02 < scattered.mean() < 0.5
    assert np.median(train_singles.energy_kev[scattered]) < np.median(
        train_singles.energy_kev[~scattered]
    )


def test_same_seed_same_singles_and_other_seed_differs():
    config = SimulationConfig(scanner=preset("small"), sources=(Source(activity_bq=1e7),), seed=5)
    a, b = simulate(config), simulate(config)
    assert np.array_equal(a.time_ns, b.time_ns) and np.array_equal(a.crystal, b.crystal)
    c = simulate(SimulationConfig(scanner=config.scanner, sources=config.sources, seed=6))
    assert len(c) != len(a) or not np.array_equal(c.time_ns, a.time_ns)
