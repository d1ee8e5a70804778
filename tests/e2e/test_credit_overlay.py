"""Runs with the portfolio model's credit-loss overlay on the local stack: each shard gets its
PDs in one batched Invoke of the inference function (mode lambda) or from the loader inline in
the worker (mode inline); pnl_default is in the results, the PD model's version in each
shard's output and in the run's summary."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from scengrid import layout, pnl_dataset, s3io
from scengrid.kernel import result_metadata
from scengrid_cli.local.demo import RunOutcome, run_on_stack
from scengrid.spec import DEFAULT_MODEL_PARAMS, GeneratedScenarios, ModelRef, RunSpec
from scengrid.status import Status, read_shards

pytestmark = pytest.mark.e2e
SCENARIOS, SHARD_SIZE = 8_000, 2_000


def overlay_run(stack, mode: str, out: Path) -> tuple[RunOutcome, int]:  # noqa: ANN001
    params = {**DEFAULT_MODEL_PARAMS, "credit_overlay": {"lgd": 0.6, "mode": mode}}
    spec = RunSpec(model=ModelRef(name="portfolio", params=params), scenarios=GeneratedScenarios(count=SCENARIOS, seed=77),
                   shard_size=SHARD_SIZE, workers=2)
    before = stack.inference.endpoint.invocations
    outcome = run_on_stack(stack, spec, out, timeout_s=300)
    return outcome, stack.inference.endpoint.invocations - before


@pytest.fixture(scope="module")
def by_lambda(local_stack, tmp_path_factory):  # noqa: ANN001, ANN201
    return overlay_run(local_stack, "lambda", tmp_path_factory.mktemp("lambda"))


@pytest.fixture(scope="module")
def inline(local_stack, tmp_path_factory):  # noqa: ANN001, ANN201
    return overlay_run(local_stack, "inline", tmp_path_factory.mktemp("inline"))


def test_one_batched_invoke_per_shard(by_lambda) -> None:  # noqa: ANN001
    outcome, invocations = by_lambda
    assert outcome.record.status is Status.COMPLETE, outcome.record.reason
    assert invocations == outcome.record.shards_total == SCENARIOS // SHARD_SIZE


def test_pnl_default_is_in_the_results_and_in_pnl(by_lambda) -> None:  # noqa: ANN001
    outcome, _ = by_lambda
    table = pnl_dataset.read_run(outcome.run_id)
    default = table.column("pnl_default").to_numpy()
    assert table.num_rows == SCENARIOS and (default < 0).all() and np.ptp(default) > 0
    parts = sum(table.column(c).to_numpy() for c in table.column_names if c.startswith("pnl_"))
    assert np.allclose(parts, table.column("pnl").to_numpy(), rtol=0, atol=1e-6)
    assert "pnl_default" in pq.read_schema(next((outcome.results_dir / "pnl").glob("*.parquet"))).names


def test_the_model_version_is_recorded_with_each_shard_and_in_the_summary(by_lambda, local_stack, small_pd_model) -> None:  # noqa: ANN001
    outcome, _ = by_lambda
    assert local_stack.inference.model_version == small_pd_model.sha256
    assert outcome.summary["model_version"] == small_pd_model.sha256 and outcome.summary["model_versions"] == [small_pd_model.sha256]
    assert json.loads((outcome.results_dir / "summary.json").read_text())["model_version"] == small_pd_model.sha256
    assert outcome.as_json()["model_version"] == small_pd_model.sha256
    for shard in read_shards(outcome.run_id):
        assert shard.model_version == small_pd_model.sha256  # from its shard-done event, by the tracker
        schema = s3io.get_table(layout.shard_key(outcome.run_id, shard.shard_id)).schema
        assert result_metadata(schema) == {"model_version": small_pd_model.sha256, "model_package": f"scengrid {version('scengrid')}"}
    assert outcome.summary["model_package"] == f"scengrid {version('scengrid')}"


def test_inline_gives_the_same_losses_without_invoking_the_function(by_lambda, inline) -> None:  # noqa: ANN001
    (lambda_outcome, _), (inline_outcome, invocations) = by_lambda, inline
    assert inline_outcome.record.status is Status.COMPLETE, inline_outcome.record.reason
    assert invocations == 0
    a = pnl_dataset.read_run(lambda_outcome.run_id).column("pnl_default").to_numpy()
    b = pnl_dataset.read_run(inline_outcome.run_id).column("pnl_default").to_numpy()
    assert np.allclose(a, b, rtol=1e-6)  # the function rounds PDs to 1e-9
    assert inline_outcome.summary["model_version"] == lambda_outcome.summary["model_version"]


def test_scengrid_demo_with_the_overlay(small_pd_model, tmp_path: Path) -> None:  # noqa: ANN001
    env = {**os.environ, "SCENGRID_PD_MODEL_FILE": str(small_pd_model.path)}
    done = subprocess.run(
        [sys.executable, "-m", "scengrid_cli.cli", "demo", "--scenarios", "4000", "--credit-overlay", "lambda", "--lgd", "0.4",
         "--out", str(tmp_path), "--json"],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["status"] == "COMPLETE" and result["model_version"] == small_pd_model.sha256
    assert "pnl_default" in pq.read_schema(next((Path(result["results_dir"]) / "pnl").glob("*.parquet"))).names
