import math

import numpy as np
from scipy.stats import norm

from scengrid.risk import expected_shortfall, summarise, value_at_risk


def test_var_is_minus_numpys_quantile() -> None:
    pnl = np.random.default_rng(0).normal(size=10_001)
    assert value_at_risk(pnl, 0.99) == -np.quantile(pnl, 0.01)
    assert value_at_risk(pnl, 0.95) == -np.quantile(pnl, 0.05)


def test_es_is_the_mean_of_the_worst_tail() -> None:
    pnl = np.arange(1.0, 101.0)  # worst 2.5% of 100 -> ceil(2.5) = 3 scenarios: 1, 2, 3
    assert expected_shortfall(pnl, 0.975) == -2.0


def test_normal_var_and_es_match_closed_forms() -> None:
    sigma = 2.5
    n = 2_000_000
    pnl = np.random.default_rng(1).normal(scale=sigma, size=n)
    var99 = sigma * norm.ppf(0.99)
    es975 = sigma * norm.pdf(norm.ppf(0.975)) / 0.025
    assert math.isclose(value_at_risk(pnl, 0.99), var99, rel_tol=0.01)
    assert math.isclose(expected_shortfall(pnl, 0.975), es975, rel_tol=0.01)


def test_summary_lists_the_worst_scenarios_by_id() -> None:
    ids = np.arange(100, 120)
    pnl = np.linspace(-1, 1, 20)[::-1].copy()
    s = summarise(ids, pnl)
    assert s.scenarios == 20
    assert [w["scenario_id"] for w in s.worst[:3]] == [119, 118, 117]
