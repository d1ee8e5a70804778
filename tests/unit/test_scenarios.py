import numpy as np
import pytest

from scengrid.scenarios import generate, standard_normals, uniforms
from scengrid.spec import GeneratedScenarios


@pytest.mark.parametrize("width", [1, 3, 4, 5, 8, 13])
def test_a_scenario_depends_only_on_seed_and_index(width: int) -> None:
    whole = uniforms(seed=11, start=0, count=1000, width=width)
    for start, count in [(0, 1), (1, 7), (250, 250), (999, 1), (123, 456)]:
        part = uniforms(seed=11, start=start, count=count, width=width)
        assert np.array_equal(part, whole[start : start + count])


def test_uniforms_are_open_unit_interval_and_seed_matters() -> None:
    u = uniforms(seed=1, start=0, count=50_000, width=4)
    assert 0.0 < u.min() and u.max() < 1.0
    assert abs(u.mean() - 0.5) < 0.005
    assert not np.array_equal(u, uniforms(seed=2, start=0, count=50_000, width=4))


def test_normals_have_unit_moments_and_independent_columns() -> None:
    z = standard_normals(seed=5, start=0, count=200_000, width=3)
    assert np.allclose(z.mean(axis=0), 0.0, atol=0.01)
    assert np.allclose(z.std(axis=0), 1.0, atol=0.01)
    corr = np.corrcoef(z.T)
    assert np.allclose(corr - np.eye(3), 0.0, atol=0.01)


def test_generate_scales_by_vols() -> None:
    vols = np.array([0.01, 0.2])
    shocks = generate(GeneratedScenarios(count=100_000, seed=3), vols, 0, 100_000)
    assert shocks.shape == (100_000, 2)
    assert np.allclose(shocks.std(axis=0), vols, rtol=0.02)
