"""The ground truth the PD model is trained on: a documented link from a scenario's macro
shocks and an obligor's rating and maturity to its one-year probability of default, and the
synthetic sample drawn from it. Nothing is fitted to real data.

The link is Vasicek's one-factor model, the one behind the Basel IRB formula:

    p      = one-year through-the-cycle PD of the grade (BASE_PD: 0.01% for AAA ... 20% for CCC)
    h      = min(maturity, 1): a bond that matures within the year can only default before then
    p_h    = 1 - (1 - p)^h
    ρ      = 0.12·w + 0.24·(1 - w),  w = (1 - e^(-50p)) / (1 - e^(-50))   (Basel's asset correlation)
    m      = 0.10 · ln(max(maturity, 1))   (longer debt of the same grade is a little riskier)
    X      = 0.10·rate_shock_bp/100 + 0.35·spread_shock_bp/100 - 0.35·equity_return/0.20
             (the systematic factor in one-year standard deviations; positive is a downturn)
    PD     = Φ((Φ⁻¹(p_h) + m + √ρ·X) / √(1 - ρ)),  clipped to [1e-7, 1 - 1e-7]

The training sample draws the shocks half uniformly over the model's domain (stress) and
half from a normal around zero (ordinary days), the grade uniformly and the maturity
log-uniformly; the target is logit(PD) plus a little noise (an estimate, not the truth)."""

from __future__ import annotations

import numpy as np
from scipy.special import logit, ndtr, ndtri

from scengrid.inference.contract import DOMAIN, FEATURES, SCENARIO_FEATURES

BASE_PD = np.array([0.0001, 0.0002, 0.0005, 0.0018, 0.009, 0.035, 0.20])  # AAA, AA, A, BBB, BB, B, CCC
RATE_WEIGHT, SPREAD_WEIGHT, EQUITY_WEIGHT = 0.10, 0.35, 0.35
RATE_SCALE_BP, SPREAD_SCALE_BP, EQUITY_SCALE = 100.0, 100.0, 0.20  # one-year standard deviations
MATURITY_SLOPE = 0.10
PD_FLOOR = 1e-7
ORDINARY_SHOCKS = np.array([30.0, 30.0, 0.05])  # sd of the ordinary half of the sample
TARGET_NOISE = 0.05  # sd added to logit(PD)


def asset_correlation(pd: np.ndarray) -> np.ndarray:
    w = (1.0 - np.exp(-50.0 * pd)) / (1.0 - np.exp(-50.0))
    return 0.12 * w + 0.24 * (1.0 - w)


def systematic_factor(rate_shock_bp: np.ndarray, spread_shock_bp: np.ndarray, equity_return: np.ndarray) -> np.ndarray:
    return (
        RATE_WEIGHT * rate_shock_bp / RATE_SCALE_BP
        + SPREAD_WEIGHT * spread_shock_bp / SPREAD_SCALE_BP
        - EQUITY_WEIGHT * equity_return / EQUITY_SCALE
    )


def true_pd(features: np.ndarray) -> np.ndarray:
    """PD of each (n, 5) row of FEATURES, by the link above."""
    rate, spread, equity, grade, maturity = (np.asarray(features, dtype=np.float64)[:, j] for j in range(len(FEATURES)))
    base = BASE_PD[np.rint(grade).astype(np.int64) - 1]
    horizon_pd = 1.0 - (1.0 - base) ** np.minimum(maturity, 1.0)
    rho = asset_correlation(base)
    shifted = ndtri(horizon_pd) + MATURITY_SLOPE * np.log(np.maximum(maturity, 1.0))
    shifted += np.sqrt(rho) * systematic_factor(rate, spread, equity)
    return np.clip(ndtr(shifted / np.sqrt(1.0 - rho)), PD_FLOOR, 1.0 - PD_FLOOR)


def sample_features(rows: int, rng: np.random.Generator) -> np.ndarray:
    """(rows, 5) feature rows over the model's domain (see the module's docstring)."""
    low = np.array([DOMAIN[n][0] for n in SCENARIO_FEATURES])
    high = np.array([DOMAIN[n][1] for n in SCENARIO_FEATURES])
    stress = rng.uniform(low, high, size=(rows, len(SCENARIO_FEATURES)))
    ordinary = np.clip(rng.normal(0.0, ORDINARY_SHOCKS, size=(rows, len(SCENARIO_FEATURES))), low, high)
    shocks = np.where((rng.random(rows) < 0.5)[:, None], stress, ordinary)
    grade = rng.integers(1, len(BASE_PD) + 1, size=rows).astype(np.float64)
    low_m, high_m = DOMAIN["maturity_years"]
    maturity = np.exp(rng.uniform(np.log(low_m), np.log(high_m), size=rows))
    return np.column_stack([shocks, grade, maturity])


def training_sample(rows: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Features (float32, as the model sees them) and noisy logit(PD) targets."""
    rng = np.random.default_rng(seed)
    features = sample_features(rows, rng).astype(np.float32)
    target = logit(true_pd(features)) + rng.normal(0.0, TARGET_NOISE, size=rows)
    return features, target
