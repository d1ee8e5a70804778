"""The Athena table ``pnl`` over a finished run: Athena reads every object under a partition's
location (but those named ``_*`` or ``.*``), so after a real run that location must hold
Parquet and nothing else: one file per shard, the run's P&L dataset, which DuckDB reads whole. The emulator does not create Glue tables (moto_gaps 9), so the
location comes from the template itself, with the stack's bucket and the run id put in."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from scengrid import layout
from scengrid.aws import client
from scengrid.status import read_shards
from scengrid.spec import GeneratedScenarios, RunSpec
from scengrid_cli.local.cfn import load_template
from scengrid_cli.local.demo import run_on_stack

pytestmark = pytest.mark.e2e
TEMPLATE = Path(__file__).resolve().parents[2] / "infra" / "template.yaml"
SCENARIOS = 6_000


def fn_sub(text: str, variables: dict[str, str]) -> str:
    """CloudFormation's Fn::Sub on a string: ``${Name}`` from variables, ``${!x}`` to ``${x}``."""
    return re.sub(r"\$\{(!?)([^}]+)\}", lambda m: f"${{{m[2]}}}" if m[1] else variables[m[2]], text)


def partition_location(bucket: str, run_id: str) -> str:
    """Where Athena reads a run's rows: the table's storage.location.template for that run."""
    table = load_template(TEMPLATE)["Resources"]["PnlTable"]["Properties"]["TableInput"]
    template = fn_sub(table["Parameters"]["storage.location.template"]["Fn::Sub"], {"Bucket": bucket})
    assert template.count("${run_id}") == 1, template  # projection.run_id.type injected
    return template.replace("${run_id}", run_id)


def test_the_tables_location_for_a_finished_run_holds_only_parquet(local_stack, tmp_path) -> None:  # noqa: ANN001
    spec = RunSpec(scenarios=GeneratedScenarios(count=SCENARIOS, seed=31), shard_size=2_000, workers=2)
    outcome = run_on_stack(local_stack, spec, tmp_path, timeout_s=300)
    assert outcome.execution_status == "SUCCEEDED"

    location = partition_location(local_stack.settings.bucket, outcome.run_id)
    bucket, prefix = re.fullmatch(r"s3://([^/]+)/(.+/)", location).groups()
    s3 = client("s3")
    keys = [
        obj["Key"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        for obj in page.get("Contents", [])
    ]
    assert keys, f"nothing under {location}"
    assert [k for k in keys if not k.endswith(".parquet")] == [], f"Athena would read these as Parquet: {keys}"

    assert sorted(keys) == [layout.shard_key(outcome.run_id, s.shard_id) for s in sorted(read_shards(outcome.run_id), key=lambda s: s.shard_id)]
    assert outcome.summary["pnl_dataset"]["uri"] == location and outcome.summary["pnl_dataset"]["files"] == sorted(keys)

    dataset = tmp_path / "dataset"  # the location's objects, as `scengrid results` downloads them
    dataset.mkdir()
    for key in keys:
        s3.download_file(bucket, key, str(dataset / key.rsplit("/", 1)[1]))
    [(n, ids, first, last, worst)] = duckdb.connect().execute(
        f"select count(*), count(distinct scenario_id), min(scenario_id), max(scenario_id), min(pnl) "
        f"from read_parquet('{dataset}/*.parquet')"
    ).fetchall()
    assert (n, ids, first, last) == (SCENARIOS, SCENARIOS, 0, SCENARIOS - 1)
    assert worst == outcome.summary["worst"][0]["pnl"]
    assert sum(pq.read_metadata(dataset / k.rsplit("/", 1)[1]).num_rows for k in keys) == SCENARIOS
