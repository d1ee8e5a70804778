"""Counter-based scenario generation: scenario i depends only on (seed, i).

Philox4x64 is keyed by the seed. Scenario i owns the counter blocks
``[i * B, (i + 1) * B)`` with ``B = ceil(W / 4)`` (each block yields four 64-bit words, W is
the number of words a scenario draws), so any shard can start at any scenario and get the same
numbers, whatever the shard size. Words become uniforms in (0, 1) and then normals through the
inverse CDF, which consumes exactly one word per draw (no rejection sampling, so no drift
between shards). A Student-t scenario draws one more word, its chi-square mixing variable,
also through an inverse CDF.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.special import chdtri, ndtri

from scengrid.errors import InvalidInput
from scengrid.models.base import FactorSet
from scengrid.spec import GeneratedScenarios, ScenarioSource

_WORDS_PER_BLOCK = 4
_TWO_POW_M53 = 2.0**-53
_SYMMETRY_TOLERANCE = 1e-12
_PSD_TOLERANCE = 1e-10


def uniforms(seed: int, start: int, count: int, width: int) -> np.ndarray:
    """A (count, width) array of uniforms in (0, 1) for scenarios ``start .. start+count-1``."""
    blocks = math.ceil(width / _WORDS_PER_BLOCK)
    words_per_scenario = blocks * _WORDS_PER_BLOCK
    bitgen = np.random.Philox(key=seed, counter=0)
    if start:
        bitgen.advance(start * blocks)
    raw = bitgen.random_raw(count * words_per_scenario).reshape(count, words_per_scenario)[:, :width]
    out = (raw >> np.uint64(11)).astype(np.float64)
    out += 0.5
    out *= _TWO_POW_M53
    return out


def standard_normals(seed: int, start: int, count: int, width: int) -> np.ndarray:
    u = uniforms(seed, start, count, width)
    return ndtri(u, out=u)


def independent_draws(source: GeneratedScenarios, start: int, count: int, width: int) -> np.ndarray:
    """(count, width) independent draws with unit variance: standard normals, or Student-t
    normals ``z * sqrt((df - 2) / chi2_df)`` (the chi-square from the scenario's last word)."""
    if source.distribution == "normal":
        return standard_normals(source.seed, start, count, width)
    u = uniforms(source.seed, start, count, width + 1)
    z = ndtri(u[:, :width])
    chi2 = chdtri(source.df, u[:, width])
    z *= np.sqrt((source.df - 2.0) / chi2)[:, None]
    return z


def generate(source: ScenarioSource, vols: np.ndarray, start: int, count: int) -> np.ndarray:
    """Independent factor shocks (count, F) for scenarios ``start .. start+count-1``, scaled by
    ``vols``, ignoring any correlation. A model's own shocks, correlated as the model or the
    source says, or read from a file, come from ``scengrid.scenario_sources.open_shocks``;
    here a file-backed source has nothing to generate, so its shocks are unknown (NaN)."""
    if not isinstance(source, GeneratedScenarios):
        return np.full((count, vols.shape[0]), np.nan)
    shocks = independent_draws(source, start, count, vols.shape[0])
    shocks *= vols
    return shocks


@dataclass(frozen=True)
class Covariance:
    """How generated shocks are laid out: ``columns[j]`` is the model column of generated
    factor j, ``vols[j]`` its vol, and ``root`` a matrix with root @ root.T = the correlation
    (None for independent factors)."""

    columns: np.ndarray
    vols: np.ndarray
    root: np.ndarray | None


def covariance_for(source: GeneratedScenarios, factors: FactorSet) -> Covariance:
    """The model's vols and correlation, unless the source overrides them (then factors it does
    not list get no shock). Raises InvalidInput naming what is wrong with an override."""
    override = source.factors
    if override is None:
        root = None if factors.correlation is None else correlation_root(factors.correlation, "model.correlation")
        return Covariance(np.arange(len(factors.names)), factors.vols.astype(np.float64), root)
    index = {name: i for i, name in enumerate(factors.names)}
    unknown = [name for name in override.factors if name not in index]
    if unknown:
        raise InvalidInput("scenarios.factors.factors", f"unknown factor {unknown[0]!r}: the model has {_listed(factors.names)}")
    columns = np.array([index[name] for name in override.factors], dtype=np.int64)
    if override.covariance is not None:
        matrix = np.array(override.covariance, dtype=np.float64)
        _require_symmetric(matrix, "scenarios.factors.covariance")
        vols = np.sqrt(np.diag(matrix)) if np.all(np.diag(matrix) > 0) else None
        if vols is None:
            raise InvalidInput("scenarios.factors.covariance", "every variance (diagonal entry) must be positive")
        return Covariance(columns, vols, correlation_root(matrix / np.outer(vols, vols), "scenarios.factors.covariance"))
    vols = np.array(override.vols, dtype=np.float64)
    if override.correlation is None:
        return Covariance(columns, vols, None)
    correlation = np.array(override.correlation, dtype=np.float64)
    if not np.allclose(np.diag(correlation), 1.0, rtol=0, atol=_SYMMETRY_TOLERANCE):
        raise InvalidInput("scenarios.factors.correlation", "the diagonal must be 1")
    return Covariance(columns, vols, correlation_root(correlation, "scenarios.factors.correlation"))


def correlation_root(correlation: np.ndarray, field: str) -> np.ndarray:
    """A matrix L with L @ L.T = correlation: its Cholesky factor, or, for a singular but
    positive semi-definite matrix, the symmetric eigen root. Anything else is refused."""
    _require_symmetric(correlation, field)
    try:
        return np.linalg.cholesky(correlation)
    except np.linalg.LinAlgError:
        values, vectors = np.linalg.eigh(correlation)
        if values[0] < -_PSD_TOLERANCE * max(1.0, values[-1]):
            raise InvalidInput(
                field, f"not positive semi-definite (smallest eigenvalue {values[0]:.3g}); fix the matrix"
            ) from None
        return vectors * np.sqrt(np.clip(values, 0.0, None))


def correlated_shocks(source: GeneratedScenarios, covariance: Covariance, width: int, start: int, count: int) -> np.ndarray:
    """Shocks (count, width) in the model's columns for scenarios ``start .. start+count-1``."""
    draws = independent_draws(source, start, count, covariance.vols.shape[0])
    if covariance.root is not None:
        draws = draws @ covariance.root.T
    draws *= covariance.vols
    if covariance.columns.shape[0] == width and np.array_equal(covariance.columns, np.arange(width)):
        return draws
    shocks = np.zeros((count, width))
    shocks[:, covariance.columns] = draws
    return shocks


def bootstrap_rows(seed: int, start: int, count: int, rows: int) -> np.ndarray:
    """The row of a ``rows``-row history that scenarios ``start .. start+count-1`` replay: a
    uniform draw keyed by (seed, i), so a bootstrap too is the same whatever the shard size."""
    u = uniforms(seed, start, count, 1)[:, 0]
    return np.minimum((u * rows).astype(np.int64), rows - 1)


def _require_symmetric(matrix: np.ndarray, field: str) -> None:
    if not np.allclose(matrix, matrix.T, rtol=0, atol=_SYMMETRY_TOLERANCE * max(1.0, float(np.abs(matrix).max()))):
        raise InvalidInput(field, "the matrix must be symmetric")


def _listed(names: tuple[str, ...], shown: int = 8) -> str:
    more = f", … ({len(names)} in all)" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more
