"""The PD model's request contract: the three forms give the same feature rows, and every bad
request is an InvalidInput naming the field at fault."""

from __future__ import annotations

import json

import numpy as np
import pytest

from scengrid.errors import InvalidInput
from scengrid.inference.contract import FEATURES, MAX_PREDICTIONS, grid_features, parse_request

ROWS = [[0.0, 0.0, 0.0, 4, 5.0], [25.0, 150.0, -0.2, 6, 1.5]]


def columns_of(rows: list[list[float]]) -> dict:
    return {"columns": {name: [r[j] for r in rows] for j, name in enumerate(FEATURES)}}


def test_rows_and_columns_give_the_same_features() -> None:
    by_rows, by_columns = parse_request({"rows": ROWS}), parse_request(columns_of(ROWS))
    assert by_rows.shape() == by_columns.shape() == [2]
    assert by_rows.features().dtype == np.float32
    assert np.array_equal(by_rows.features(), by_columns.features())
    assert np.array_equal(parse_request(json.dumps({"rows": ROWS})).features(), by_rows.features())  # JSON text too


def test_a_grid_is_every_scenario_with_every_obligor_scenario_major() -> None:
    request = parse_request({
        "scenarios": {"rate_shock_bp": [0, 10, 20], "spread_shock_bp": [0, 50, 100], "equity_return": [0, -0.1, -0.2]},
        "obligors": {"rating_grade": [1, 7], "maturity_years": [5, 10]},
    })
    rows = request.features()
    assert request.shape() == [3, 2] and rows.shape == (6, 5)
    assert rows[3].tolist() == pytest.approx([10, 50, -0.1, 7, 10])  # scenario 1, obligor 1
    scenarios, obligors = np.arange(12.0).reshape(4, 3), np.array([[1.0, 2.0], [3.0, 4.0]])
    assert np.array_equal(grid_features(scenarios, obligors)[5], [6, 7, 8, 3, 4])


@pytest.mark.parametrize(("payload", "field", "says"), [
    ({"rows": [ROWS[0], [1, 2, 3, 4]]}, "rows[1]", "4 features given; a row has 5: rate_shock_bp"),
    ({"rows": [ROWS[0] + [1]]}, "rows[0]", "6 features given"),
    ({"rows": [[0, 0, 0, 4.5, 5]]}, "rows[0][3]", "whole grade from 1 (AAA) to 7 (CCC)"),
    ({"rows": [[0, 0, 0, 8, 5]]}, "rows[0][3]", "whole grade"),
    ({"rows": [[0, 0, 0, 4, 500]]}, "rows[0][4]", "maturity_years must be within"),
    ({"rows": [[0, 0, -3, 4, 5]]}, "rows[0][2]", "equity_return must be within [-1, 0.5]"),
    ({"rows": [[0, "x", 0, 4, 5]]}, "rows[0][1]", "valid number"),
    ({"rows": []}, "rows", "at least 1"),
    ({**columns_of(ROWS), "extra": 1}, "extra", "Extra inputs"),
    ({"columns": {**columns_of(ROWS)["columns"], "maturity_years": [5.0]}}, "columns", "the same length"),
    ({"columns": {**columns_of(ROWS)["columns"], "maturity_years": [5.0, 0.01]}}, "columns.maturity_years[1]", "outside"),
    ({"scenarios": {"rate_shock_bp": [0], "spread_shock_bp": [0], "equity_return": [0]}}, "obligors", "Field required"),
    ({"scenarios": {"rate_shock_bp": [0], "spread_shock_bp": [5000], "equity_return": [0]},
      "obligors": {"rating_grade": [4], "maturity_years": [5]}}, "scenarios.spread_shock_bp[0]", "within [-200, 1000]"),
    ({"scenarios": {"rate_shock_bp": [0.0] * 2000, "spread_shock_bp": [0.0] * 2000, "equity_return": [0.0] * 2000},
      "obligors": {"rating_grade": [4] * 201, "maturity_years": [5] * 201}}, "body", f"at most {MAX_PREDICTIONS:,}"),
    ({"features": []}, "body", "give rows, columns, or scenarios with obligors"),
    ([1, 2], "body", "give rows, columns, or scenarios with obligors"),
    ("{not json", "body", "not JSON"),
])
def test_a_bad_request_names_the_field(payload: object, field: str, says: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        parse_request(payload).features()
    assert raised.value.field == field
    assert says in raised.value.problem
