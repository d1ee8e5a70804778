"""Counter-based scenario generation: scenario i depends only on (seed, i).

Philox4x64 is keyed by the seed. Scenario i owns the counter blocks
``[i * B, (i + 1) * B)`` with ``B = ceil(F / 4)`` (each block yields four 64-bit words),
so any shard can start at any scenario and get the same numbers, whatever the shard size.
Words become uniforms in (0, 1) and then normals through the inverse CDF, which consumes
exactly one word per draw (no rejection sampling, so no drift between shards).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import ndtri

from scengrid.spec import GeneratedScenarios

_WORDS_PER_BLOCK = 4
_TWO_POW_M53 = 2.0**-53


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


def generate(source: GeneratedScenarios, vols: np.ndarray, start: int, count: int) -> np.ndarray:
    """Factor shocks (count, F) for scenarios ``start .. start+count-1``: N(0, diag(vols^2))."""
    shocks = standard_normals(source.seed, start, count, vols.shape[0])
    shocks *= vols
    return shocks
