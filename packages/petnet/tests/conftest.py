import numpy as np
import pytest
from petnet.scanner import Scanner, preset
from petnet.sim import SimulationConfig, Source, WaterCylinder, simulate
from petnet.singles import Singles


def pytest_configure(config):
    # norse scripts a few functions with torch.jit, which recent torch marks deprecated;
    # matplotlib 3.x still calls pyparsing's old names
    config.addinivalue_line("filterwarnings", "ignore:.*torch.jit.script.*:FutureWarning")
    config.addinivalue_line("filterwarnings", "ignore::DeprecationWarning:matplotlib.*")
    config.addinivalue_line("filterwarnings", "ignore::DeprecationWarning:pyparsing.*")


def phantom(seed: int, duration_s: float, activity_bq: float = 5e7) -> SimulationConfig:
    return SimulationConfig(
        scanner=preset("small"),
        sources=(Source(kind="cylinder", activity_bq=activity_bq, radius_mm=20.0, length_mm=16.0),),
        water=WaterCylinder(radius_mm=20.0, length_mm=16.0),
        duration_s=duration_s,
        seed=seed,
    )


@pytest.fixture(scope="session")
def train_singles() -> Singles:
    return simulate(phantom(seed=1, duration_s=3e-3))


@pytest.fixture(scope="session")
def test_singles() -> Singles:
    return simulate(phantom(seed=2, duration_s=1e-3))


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
