"""Zero curves: continuously compounded zero rates, linear in time between the tenors and flat
outside them. A scenario shifts each tenor node; the shift is interpolated the same way, so a
curve's shift at times ``t`` is ``node_shifts @ interpolation_weights(tenors, t)``."""

from __future__ import annotations

import numpy as np


def zero_rates(tenors: np.ndarray, rates: np.ndarray, times: np.ndarray) -> np.ndarray:
    """z(t): linear between the tenors, flat before the first and after the last."""
    return interpolation_weights(tenors, times).T @ rates


def interpolation_weights(tenors: np.ndarray, times: np.ndarray) -> np.ndarray:
    """(J, T) weights with z(t_k) = sum_j w[j, k] z_j: two neighbouring nodes per time, one
    node (weight 1) outside the tenors."""
    tenors = np.asarray(tenors, dtype=np.float64)
    times = np.asarray(times, dtype=np.float64)
    weights = np.zeros((tenors.shape[0], times.shape[0]))
    clipped = np.clip(times, tenors[0], tenors[-1])
    right = np.clip(np.searchsorted(tenors, clipped, side="right"), 1, tenors.shape[0] - 1)
    left = right - 1
    columns = np.arange(times.shape[0])
    if tenors.shape[0] == 1:
        weights[0, :] = 1.0
        return weights
    share = (clipped - tenors[left]) / (tenors[right] - tenors[left])
    weights[left, columns] = 1.0 - share
    weights[right, columns] += share
    return weights
