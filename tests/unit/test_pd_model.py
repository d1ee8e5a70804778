"""The PD model made here: the ground truth behaves like a PD, the training is deterministic,
and the exported ONNX model predicts what scikit-learn predicts, to 1e-5."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from scengrid_cli.training import ground_truth
from scengrid.inference.contract import FEATURES
from scengrid.inference.loader import open_session
from scengrid_cli.training.train import _estimator, _to_onnx, sklearn_pd

HOLDOUT = ground_truth.sample_features(20_000, np.random.default_rng(11)).astype(np.float32)


def onnx_pd(path: Path, features: np.ndarray) -> np.ndarray:
    session, input_name, output_name = open_session(path, str(path), threads=1)
    return session.run([output_name], {input_name: features})[0].reshape(-1)


def test_onnx_predictions_equal_scikit_learns(small_pd_model) -> None:  # noqa: ANN001
    got, expected = onnx_pd(small_pd_model.path, HOLDOUT), sklearn_pd(small_pd_model.estimator, HOLDOUT)
    assert np.abs(got - expected).max() < 1e-5


def test_a_tree_ensemble_exports_to_the_same_predictions(tmp_path: Path) -> None:
    """The large variant's kind (a random forest), small enough to fit here."""
    features, target = ground_truth.training_sample(4_000, seed=3)
    forest = _estimator({"kind": "forest", "trees": 3}, seed=3).fit(features, target)
    path = tmp_path / "forest.onnx"
    path.write_bytes(_to_onnx(forest, "test", 4_000, 3))
    assert np.abs(onnx_pd(path, HOLDOUT) - sklearn_pd(forest, HOLDOUT)).max() < 1e-5


def test_the_model_takes_the_contracts_features_and_gives_pd(small_pd_model) -> None:  # noqa: ANN001
    session, input_name, output_name = open_session(small_pd_model.path, "test", threads=1)
    [given] = session.get_inputs()
    assert (input_name, given.shape, given.type, output_name) == ("features", [None, len(FEATURES)], "tensor(float)", "pd")
    assert session.get_modelmeta().custom_metadata_map["features"] == ",".join(FEATURES)
    pd = onnx_pd(small_pd_model.path, HOLDOUT)
    assert ((pd >= 0) & (pd <= 1)).all() and np.median(pd) < 0.1  # a probability, mostly small


def test_the_model_learned_the_ground_truth(small_pd_model) -> None:  # noqa: ANN001
    holdout = small_pd_model.card["holdout"]
    assert holdout["pd_abs_error_mean"] < 0.02 and holdout["pd_rel_error_median"] < 0.3
    assert small_pd_model.card["sha256"] == small_pd_model.sha256 == small_pd_model.path.with_name("pd-small.onnx.sha256").read_text().split()[0]


def test_training_is_deterministic_across_interpreters(small_pd_model, tmp_path: Path) -> None:  # noqa: ANN001
    """Another process, another hash seed: the same bytes."""
    env = {**os.environ, "PYTHONHASHSEED": "12345", "PYTHONWARNINGS": "ignore"}
    subprocess.run([sys.executable, "-m", "scengrid_cli.training.train", "--small", "--out", str(tmp_path)],
                   env=env, check=True, capture_output=True, timeout=300)
    assert (tmp_path / "pd-small.onnx").read_bytes() == small_pd_model.path.read_bytes()


def rows(**overrides: float) -> np.ndarray:
    base = {"rate_shock_bp": 0.0, "spread_shock_bp": 0.0, "equity_return": 0.0, "rating_grade": 4.0, "maturity_years": 5.0}
    base.update(overrides)
    return np.array([[base[name] for name in FEATURES]])


def test_the_ground_truth_is_a_pd_that_moves_the_right_way() -> None:
    pd = lambda **kw: float(ground_truth.true_pd(rows(**kw))[0])  # noqa: E731
    grades = [pd(rating_grade=g) for g in range(1, 8)]
    assert grades == sorted(grades) and 0 < grades[0] < grades[-1] < 1
    assert pd(spread_shock_bp=300) > pd() > pd(spread_shock_bp=-100)
    assert pd(equity_return=-0.4) > pd() > pd(equity_return=0.3)
    assert pd(rate_shock_bp=200) > pd()
    assert pd(maturity_years=0.25) < pd(maturity_years=1) < pd(maturity_years=30)
    extreme = ground_truth.true_pd(np.array([[300, 1000, -1, 7, 100], [-300, -200, 0.5, 1, 1 / 12]]))
    assert extreme[0] < 1 - 1e-8 and extreme[1] >= ground_truth.PD_FLOOR


def test_the_sample_covers_the_domain() -> None:
    sample = ground_truth.sample_features(50_000, np.random.default_rng(0))
    from scengrid.inference.contract import DOMAIN

    for j, name in enumerate(FEATURES):
        low, high = DOMAIN[name]
        assert low <= sample[:, j].min() and sample[:, j].max() <= high, name
    assert set(np.unique(sample[:, 3])) == set(range(1, 8))


@pytest.fixture(autouse=True)
def _quiet() -> None:
    warnings.simplefilter("ignore")
