"""The portfolio model's credit-loss overlay: its params, the obligor groups, and pnl_default
against a bond-by-bond computation with the same PD model (inline, a baked-in file)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from scengrid.errors import InvalidInput
from scengrid.inference.contract import RATING_GRADES
from scengrid.inference.loader import FileModelSource, ModelHolder
from scengrid.kernel import evaluate_range
from scengrid.models import load_model
from scengrid.models.portfolio.credit import FEATURE_PREFIX, MATURITY_NODES
from scengrid.settings import get_settings
from scengrid.spec import GeneratedScenarios

SAMPLE = {"sample": {"positions": 120, "seed": 3}}
SCENARIOS = GeneratedScenarios(count=3_000, seed=9)


@pytest.fixture
def inline_model(small_pd_model, monkeypatch: pytest.MonkeyPatch, tmp_path) -> Iterator[None]:  # noqa: ANN001
    monkeypatch.setenv("SCENGRID_MODEL_URI", str(small_pd_model.path))
    monkeypatch.setenv("SCENGRID_MODEL_CACHE_DIR", str(tmp_path))
    get_settings.cache_clear()
    yield
    monkeypatch.undo()
    get_settings.cache_clear()


def overlay_model(**overlay: object):  # noqa: ANN201
    return load_model("portfolio", {"portfolio": SAMPLE, "credit_overlay": {"mode": "inline", **overlay}})


def test_pnl_default_is_minus_pd_times_lgd_times_exposure_bond_by_bond(small_pd_model, inline_model, tmp_path: Path) -> None:  # noqa: ANN001
    model = overlay_model(lgd=0.45)
    columns = evaluate_range(model, SCENARIOS, 0, SCENARIOS.count)
    features = np.column_stack([columns[f"{FEATURE_PREFIX}{n}"] for n in ("rate_shock_bp", "spread_shock_bp", "equity_return")])
    output = model.finish_shard(dict(columns))
    # the reference: each bond's PD interpolated between its two maturity nodes, one by one
    pd_model = ModelHolder(FileModelSource(small_pd_model.path), tmp_path, check_s=0, threads=1).get()
    expected = np.zeros(SCENARIOS.count)
    bonds = model.portfolio.bonds()
    values = model.bonds.base_values * np.array([model.portfolio.fx_rate(b.currency) for b in bonds])
    for bond, value in zip(bonds, values):
        m = min(max(bond.maturity, MATURITY_NODES[0]), MATURITY_NODES[-1])
        k = min(max(int(np.searchsorted(MATURITY_NODES, m)), 1), len(MATURITY_NODES) - 1)
        w = (m - MATURITY_NODES[k - 1]) / (MATURITY_NODES[k] - MATURITY_NODES[k - 1])
        pd = [pd_model.predict(np.column_stack([features, np.full((len(features), 2), [RATING_GRADES[bond.rating], node])]))
              for node in (MATURITY_NODES[k - 1], MATURITY_NODES[k])]
        expected -= ((1 - w) * pd[0] + w * pd[1]) * 0.45 * value
    got = output.columns["pnl_default"]
    assert np.allclose(got, expected, rtol=1e-5, atol=1e-6 * np.abs(expected).max())
    assert (got < 0).all()
    assert output.metadata == {"model_version": small_pd_model.sha256}


def test_the_attribution_still_adds_up_and_the_features_are_gone(inline_model) -> None:  # noqa: ANN001
    model = overlay_model()
    plain = evaluate_range(load_model("portfolio", {"portfolio": SAMPLE}), SCENARIOS, 0, 500)
    output = model.finish_shard(evaluate_range(model, SCENARIOS, 0, 500))
    columns = output.columns
    assert not [c for c in columns if c.startswith(FEATURE_PREFIX)]
    parts = sum(v for k, v in columns.items() if k.startswith("pnl_"))
    assert np.allclose(parts, columns["pnl"], rtol=0, atol=1e-6)
    assert np.allclose(columns["pnl"] - columns["pnl_default"], plain["pnl"], rtol=1e-12, atol=1e-6)


def test_the_groups_carry_every_bonds_loss_given_default_once() -> None:
    model = load_model("portfolio", {"portfolio": SAMPLE, "credit_overlay": {"lgd": 0.5}})
    groups = model.credit.groups
    values = model.bonds.base_values * np.array([model.portfolio.fx_rate(b.currency) for b in model.portfolio.bonds()])
    assert groups.loss_weights.sum() == pytest.approx(0.5 * values.sum(), rel=1e-12)
    assert len(groups.features) <= len(RATING_GRADES) * len(MATURITY_NODES)
    assert set(groups.features[:, 1]) <= set(MATURITY_NODES) and set(groups.features[:, 0]) <= set(RATING_GRADES.values())


def test_without_the_overlay_nothing_changes() -> None:
    model = load_model("portfolio", {"portfolio": SAMPLE})
    columns = evaluate_range(model, SCENARIOS, 0, 100)
    output = model.finish_shard(columns)
    assert output.metadata == {} and "pnl_default" not in output.columns and output.columns is columns


@pytest.mark.parametrize(("overlay", "field"), [
    ({"lgd": 0}, "model.params.credit_overlay.lgd"),
    ({"lgd": 1.5}, "model.params.credit_overlay.lgd"),
    ({"mode": "sagemaker"}, "model.params.credit_overlay.mode"),
    ({"lgd": 0.5, "horizon": 1}, "model.params.credit_overlay.horizon"),
    ("yes", "model.params.credit_overlay"),
])
def test_bad_overlay_params_name_the_field(overlay: object, field: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        load_model("portfolio", {"portfolio": SAMPLE, "credit_overlay": overlay})
    assert raised.value.field == field


def test_a_rating_without_a_grade_names_the_bond() -> None:
    from scengrid.models.portfolio import sample_portfolio

    portfolio = sample_portfolio(20, 1)
    portfolio["spreads"]["NR"] = 0.02
    bond = next(p for p in portfolio["positions"] if p["type"] == "bond")
    bond["rating"] = "NR"
    with pytest.raises(InvalidInput) as raised:
        load_model("portfolio", {"portfolio": portfolio, "credit_overlay": {}})
    assert raised.value.field == f"model.params.portfolio.positions[{bond['id']}].rating"
    assert "no grade for 'NR'" in raised.value.problem
