"""Fixtures of the petnet tests: simulated acquisitions and hand-built singles."""

import numpy as np
import pytest
from petnet.demo import demo_simulation
from petnet.scanner import Scanner
from petnet.sim import simulate
from petnet.singles import Singles


def pytest_configure(config):
    # matplotlib 3.x still calls pyparsing's old names
    config.addinivalue_line("filterwarnings", "ignore::DeprecationWarning:matplotlib.*")
    config.addinivalue_line("filterwarnings", "ignore::DeprecationWarning:pyparsing.*")


@pytest.fixture(scope="session")
def train_singles() -> Singles:
    return simulate(demo_simulation(seed=1, duration_s=3e-3))


@pytest.fixture(scope="session")
def test_singles() -> Singles:
    return simulate(demo_simulation(seed=2, duration_s=1e-3))


@pytest.fixture
def hand_singles():
    """Build Singles from explicit lists (times in ns), on the small scanner by default."""

    def build(times, crystals, energies, decay_id=None, scattered=None, scanner=None):
        n = len(times)
        return Singles(
            time_ns=np.asarray(times, dtype=float),
            crystal=np.asarray(crystals),
            energy_kev=np.asarray(energies, dtype=float),
            decay_id=None if decay_id is None else np.asarray(decay_id),
            scattered=None if decay_id is None else np.asarray(scattered or [False] * n),
            scanner=scanner or Scanner(name="small"),
        )

    return build
