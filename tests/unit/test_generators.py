"""Monte Carlo generators: VaR and ES of a linear portfolio against their closed forms (within
three standard errors, at a million scenarios), covariances, overrides, and the counter-based
property: scenario i depends only on (seed, i), whatever the range that asks for it."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate, stats

from scengrid.errors import InvalidInput
from scengrid.kernel import evaluate_range
from scengrid.models import load_model
from scengrid.risk import expected_shortfall, value_at_risk
from scengrid.scenario_sources import open_shocks, resolve_source
from scengrid.scenarios import bootstrap_rows, generate, standard_normals
from scengrid.spec import FactorCovariance, FileScenarios, GeneratedScenarios

MILLION = 1_000_000
EXPOSURES = {"equity.SPX": 2.0e6, "equity.SX5E": 1.2e6, "rate.USD.5": -4.5e7, "spread.BBB": -1.5e7, "fx.EUR": 8.0e5}
VOLS = [0.012, 0.013, 0.0007, 0.0004, 0.006]
CORRELATION = [
    [1.0, 0.75, -0.2, -0.4, 0.1],
    [0.75, 1.0, -0.15, -0.35, 0.3],
    [-0.2, -0.15, 1.0, 0.25, 0.05],
    [-0.4, -0.35, 0.25, 1.0, -0.1],
    [0.1, 0.3, 0.05, -0.1, 1.0],
]


@pytest.fixture(scope="module")
def linear():  # noqa: ANN201
    return load_model("linear", {"exposures": EXPOSURES, "vols": dict(zip(EXPOSURES, VOLS))})


def covariance_override(**extra: object) -> FactorCovariance:
    return FactorCovariance(factors=list(EXPOSURES), vols=VOLS, correlation=CORRELATION, **extra)


def pnl_sigma() -> float:
    e, v = np.array(list(EXPOSURES.values())), np.array(VOLS)
    return float(np.sqrt(e @ (np.outer(v, v) * np.array(CORRELATION)) @ e))


def tail_standard_errors(scale: float, density, quantile: float, es: float, tail_var: float, n: int, p: float) -> tuple[float, float]:  # noqa: ANN001
    """Asymptotic standard errors of the empirical p-quantile (VaR) and of the mean of the worst
    p·n (ES): sqrt(p(1-p)/n)/f(q), and sqrt((Var(L | L >= VaR) + (1-p)(ES - VaR)^2) / (n p))."""
    var_se = math.sqrt(p * (1 - p) / n) / (density(quantile) / scale)
    es_se = math.sqrt((tail_var + (1 - p) * (es - quantile * scale) ** 2) / (n * p))
    return var_se, es_se


def check_within_three_standard_errors(pnl: np.ndarray, var_99: float, var_se: float, es_975: float, es_se: float) -> None:
    mc_var, mc_es = value_at_risk(pnl, 0.99), expected_shortfall(pnl, 0.975)
    print(f"VaR99 MC {mc_var:,.0f} vs {var_99:,.0f} (SE {var_se:,.0f}, {abs(mc_var - var_99) / var_se:.2f} SE); "
          f"ES97.5 MC {mc_es:,.0f} vs {es_975:,.0f} (SE {es_se:,.0f}, {abs(mc_es - es_975) / es_se:.2f} SE)")
    assert abs(mc_var - var_99) <= 3 * var_se
    assert abs(mc_es - es_975) <= 3 * es_se


def test_normal_var_and_es_of_a_linear_portfolio_match_the_closed_form(linear) -> None:  # noqa: ANN001
    source = GeneratedScenarios(count=MILLION, seed=11, factors=covariance_override())
    pnl = evaluate_range(linear, source, 0, MILLION)["pnl"]
    sigma, norm = pnl_sigma(), stats.norm
    z99, z975 = norm.ppf(0.99), norm.ppf(0.975)
    tail = norm.pdf(z975) / 0.025  # E[X | X > z] for a standard normal loss X
    es_975 = sigma * tail
    var_se, _ = tail_standard_errors(sigma, norm.pdf, z99, es_975, 0.0, MILLION, 0.01)
    _, es_se = tail_standard_errors(sigma, norm.pdf, z975, es_975, sigma**2 * (1 + z975 * tail - tail**2), MILLION, 0.025)
    check_within_three_standard_errors(pnl, sigma * z99, var_se, es_975, es_se)


def test_student_t_var_and_es_of_a_linear_portfolio_match_the_closed_form(linear) -> None:  # noqa: ANN001
    df = 5.0
    source = GeneratedScenarios(count=MILLION, seed=12, distribution="student_t", df=df, factors=covariance_override())
    pnl = evaluate_range(linear, source, 0, MILLION)["pnl"]
    scale = pnl_sigma() * math.sqrt((df - 2) / df)  # the covariance is the t's own
    t = stats.t(df)
    q99, q975 = t.ppf(0.99), t.ppf(0.975)
    es_975 = scale * t.pdf(q975) * (df + q975**2) / (df - 1) / 0.025
    second = integrate.quad(lambda x: x * x * t.pdf(x), q975, np.inf)[0] / 0.025
    tail_var = scale**2 * second - es_975**2
    var_se, _ = tail_standard_errors(scale, t.pdf, q99, es_975, 0.0, MILLION, 0.01)
    _, es_se = tail_standard_errors(scale, t.pdf, q975, es_975, tail_var, MILLION, 0.025)
    check_within_three_standard_errors(pnl, scale * q99, var_se, es_975, es_se)


def test_generated_shocks_have_the_models_covariance() -> None:
    model = load_model("portfolio", {})
    factors = model.factors
    shocks = open_shocks(GeneratedScenarios(count=200_000, seed=3), factors).read(0, 200_000)
    target = np.outer(factors.vols, factors.vols) * factors.correlation
    standard_error = np.sqrt((target**2 + np.outer(np.diag(target), np.diag(target))) / shocks.shape[0])
    assert np.all(np.abs(np.cov(shocks.T) - target) <= 5 * standard_error)


def test_a_covariance_matrix_is_the_same_as_vols_and_correlation(linear) -> None:  # noqa: ANN001
    vols = np.array(VOLS)
    matrix = (np.outer(vols, vols) * np.array(CORRELATION)).tolist()
    by_matrix = open_shocks(GeneratedScenarios(count=1000, seed=4, factors=FactorCovariance(factors=list(EXPOSURES), covariance=matrix)), linear.factors)
    by_parts = open_shocks(GeneratedScenarios(count=1000, seed=4, factors=covariance_override()), linear.factors)
    assert np.allclose(by_matrix.read(0, 1000), by_parts.read(0, 1000), rtol=1e-12, atol=1e-18)


def test_factors_left_out_of_an_override_get_no_shock(linear) -> None:  # noqa: ANN001
    override = FactorCovariance(factors=["equity.SPX", "fx.EUR"], vols=[0.01, 0.02])
    shocks = open_shocks(GeneratedScenarios(count=5000, seed=1, factors=override), linear.factors).read(0, 5000)
    columns = [linear.factors.names.index(n) for n in ("equity.SPX", "fx.EUR")]
    assert np.all(np.delete(shocks, columns, axis=1) == 0.0)
    assert np.allclose(shocks[:, columns].std(axis=0), [0.01, 0.02], rtol=0.05)


@pytest.mark.parametrize(
    ("override", "field", "words"),
    [
        (FactorCovariance(factors=["equity.NDX"], vols=[0.01]), "scenarios.factors.factors", "equity.NDX"),
        (FactorCovariance(factors=["equity.SPX", "fx.EUR"], vols=[0.01, 0.01], correlation=[[1, 0.5], [0.4, 1]]), "scenarios.factors.correlation", "symmetric"),
        (FactorCovariance(factors=["equity.SPX", "fx.EUR"], vols=[0.01, 0.01], correlation=[[0.9, 0.5], [0.5, 1]]), "scenarios.factors.correlation", "diagonal"),
        (FactorCovariance(factors=["equity.SPX", "fx.EUR", "spread.BBB"], vols=[0.01] * 3,
                          correlation=[[1, 0.9, -0.9], [0.9, 1, 0.9], [-0.9, 0.9, 1]]), "scenarios.factors.correlation", "semi-definite"),
        (FactorCovariance(factors=["equity.SPX"], covariance=[[0.0]]), "scenarios.factors.covariance", "positive"),
    ],
)
def test_a_bad_override_is_refused_by_name(linear, override: FactorCovariance, field: str, words: str) -> None:  # noqa: ANN001
    with pytest.raises(InvalidInput) as err:
        resolve_source(GeneratedScenarios(count=10, factors=override), linear.factors)
    assert err.value.field == field and words in err.value.problem


def test_a_singular_but_valid_correlation_is_accepted(linear) -> None:  # noqa: ANN001
    override = FactorCovariance(factors=["equity.SPX", "equity.SX5E"], vols=[0.01, 0.02], correlation=[[1, 1], [1, 1]])
    shocks = open_shocks(GeneratedScenarios(count=2000, seed=2, factors=override), linear.factors).read(0, 2000)
    spx, sx5e = (linear.factors.names.index(n) for n in ("equity.SPX", "equity.SX5E"))
    assert np.allclose(shocks[:, sx5e], 2 * shocks[:, spx], rtol=1e-9, atol=1e-15)


@pytest.mark.parametrize(
    "source",
    [
        GeneratedScenarios(count=5000, seed=9),
        GeneratedScenarios(count=5000, seed=9, distribution="student_t", df=4),
        GeneratedScenarios(count=5000, seed=9, factors=FactorCovariance(factors=["equity.SPX", "rate.USD.5"], vols=[0.01, 0.001], correlation=[[1, -0.3], [-0.3, 1]])),
    ],
    ids=["normal", "student-t", "override"],
)
def test_a_scenario_depends_only_on_seed_and_index(linear, source: GeneratedScenarios) -> None:  # noqa: ANN001
    reader = open_shocks(source, linear.factors)
    whole = reader.read(0, 5000)
    for start, count in [(0, 1), (17, 300), (4096, 904), (4999, 1)]:
        assert np.array_equal(reader.read(start, count), whole[start : start + count])


def test_bootstrap_draws_are_counter_based_and_cover_the_history() -> None:
    whole = bootstrap_rows(seed=5, start=0, count=100_000, rows=250)
    assert np.array_equal(bootstrap_rows(seed=5, start=777, count=1000, rows=250), whole[777:1777])
    assert whole.min() == 0 and whole.max() == 249
    counts = np.bincount(whole, minlength=250)
    assert stats.chisquare(counts).pvalue > 1e-4
    assert not np.array_equal(whole, bootstrap_rows(seed=6, start=0, count=100_000, rows=250))


def test_the_portfolio_models_results_do_not_depend_on_the_range_asked_for() -> None:
    """Bit for bit: a shard of 0..9999 and slices of other sizes give the same numbers."""
    model = load_model("portfolio", {"portfolio": {"sample": {"positions": 120, "seed": 1}}})
    source = GeneratedScenarios(count=10_000, seed=77)
    whole = evaluate_range(model, source, 0, 10_000)
    for start, count in [(0, 3), (5, 1500), (1023, 2), (3333, 3333), (9000, 1000)]:
        part = evaluate_range(model, source, start, count)
        for name, values in whole.items():
            assert np.array_equal(part[name].view(np.uint64), values[start : start + count].view(np.uint64)), (name, start)


def test_generate_draws_independent_shocks_and_has_nothing_to_draw_for_a_file() -> None:
    """``generate`` (independent shocks by vols) stays what it was for a normal source; a
    file-backed source's shocks are in its file, so here they are unknown."""
    vols = np.array([0.01, 0.2, 0.03])
    normal = generate(GeneratedScenarios(count=10, seed=3), vols, 4, 5)
    assert np.array_equal(normal, standard_normals(3, 4, 5, 3) * vols)
    t = generate(GeneratedScenarios(count=200_000, seed=3, distribution="student_t", df=6), vols, 0, 200_000)
    assert np.allclose(t.std(axis=0), vols, rtol=0.02) and stats.kurtosis(t[:, 0]) > 1.5  # t(6): excess kurtosis 3
    assert np.isnan(generate(FileScenarios(kind="file", uri="s.parquet", count=10), vols, 0, 2)).all()
