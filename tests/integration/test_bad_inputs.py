"""Bad input, table-driven, through the edges a user reaches: the HTTP API, the CLI, scenario
files and portfolios. Each gets a 4xx (or a CLI exit status 2) whose message names the field,
and leaves nothing behind: no run or shard item, no object, no work message, no execution, no
admission. A submission over a limit of what may be in flight gets a 429 with Retry-After and
the limit named."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import requests

from scengrid import work_queues
from scengrid.aws import client
from scengrid_cli.client import SigV4RequestAuth
from scengrid_cli.local.api_user import write_profile
from scengrid_cli.local.http_api import LocalApi
from scengrid_cli.local.stack import REGION
from scengrid.events import utcnow
from scengrid.models import load_model
from scengrid.settings import use_settings
from scengrid.spec import DEFAULT_MODEL_PARAMS
from services.tracker.admission import AdmissionStore, Ticket, Totals
from tests.portfolio_data import GOOD as BOOK

GOOD = {"scenarios": {"count": 2000, "seed": 3}, "shard_size": 1000, "workers": 1}
ROWS = 500


def book(**changes: Any) -> dict:
    """The good book with a change: ``position=i`` and fields, or top-level keys."""
    data = copy.deepcopy(BOOK)
    index = changes.pop("position", None)
    (data if index is None else data["positions"][index]).update(changes)
    return {**GOOD, "model": {"name": "portfolio", "params": {"portfolio": data}}}


def from_file(name: str, **extra: Any) -> dict:
    return {**GOOD, "scenarios": {"kind": "file", "uri": f"s3://{{bucket}}/inputs/{name}", **extra}}


# (what, body, status, words in the answer)
API = [
    ("shard size 0", {**GOOD, "shard_size": 0}, 422, "shard_size"),
    ("negative shard size", {**GOOD, "shard_size": -10}, 422, "shard_size"),
    ("more shards than the limit", {**GOOD, "scenarios": {"count": 10_000_000}, "shard_size": 1}, 422, "shard_size"),
    ("no workers", {**GOOD, "workers": 0}, 422, "workers"),
    ("workers not a number", {**GOOD, "workers": "many"}, 422, "workers"),
    ("no scenarios", {**GOOD, "scenarios": {"count": 0}}, 422, "count"),
    ("too many scenarios", {**GOOD, "scenarios": {"count": 10**12}}, 422, "count"),
    ("negative seed", {**GOOD, "scenarios": {"count": 10, "seed": -1}}, 422, "seed"),
    ("scenarios missing", {"shard_size": 10}, 422, "scenarios"),
    ("an import path for a model", {**GOOD, "model": {"name": "os.system"}}, 422, "name"),
    ("an unknown model", {**GOOD, "model": {"name": "nosuchmodel"}}, 400, "model.name"),
    ("bad model params", {**GOOD, "model": {"name": "linear", "params": {"vols": {"equity.SPX": -1}}}}, 400, "model.params"),
    ("an unknown field", {**GOOD, "surprise": True}, 422, "surprise"),
    ("an unknown scenario kind", {**GOOD, "scenarios": {"count": 1000, "kind": "perl"}}, 422, "kind"),
    ("a negative planned cost", {**GOOD, "plan": {"cost_usd_mean": -1, "cost_usd_p90": 1, "wall_s_mean": 1,
                                                  "wall_s_p90": 1, "prices_as_of": "x"}}, 422, "cost_usd_mean"),
    ("not JSON", "{not json", 422, "body"),
    ("not UTF-8", b"\xff\xfe{}", 400, "body"),
    ("an oversize payload", "x" * (300 * 1024), 413, "body"),
    ("a payload over the limit by a byte", "x" * (240 * 1024 + 1), 413, "body"),
]
SCENARIO_FILES = [
    ("a file without scenario_id", from_file("no-id.parquet"), 400, "'scenario_id' is missing"),
    ("a NaN shock", from_file("nan.parquet"), 400, "shocks must be finite"),
    ("an infinite shock", from_file("inf.parquet"), 400, "shocks must be finite"),
    ("a text column", from_file("text.parquet"), 400, "must be numbers"),
    ("a column that is not a factor", from_file("unknown-factor.parquet"), 400, "'rate.XXX.5' is not a factor"),
    ("a corrupt Parquet file", from_file("corrupt.parquet"), 400, "not a readable Parquet file"),
    ("a file with no rows", from_file("empty.parquet"), 400, "has no rows"),
    ("a missing file", from_file("nowhere.parquet"), 400, "cannot read"),
    ("a count that is not the file's", from_file("good.parquet", count=ROWS + 1), 400, "scenarios.count"),
    ("a path on the server's disk", {**GOOD, "scenarios": {"kind": "stress", "uri": "/etc/passwd"}}, 400, "S3 only"),
    ("a path with a NUL byte", {**GOOD, "scenarios": {"kind": "stress", "uri": "B\u0000x"}}, 400, "scenarios.uri"),
]
PORTFOLIOS = [
    ("a negative notional", book(position=0, notional=-1e6), 400, "positions[b1].notional"),
    ("an unknown rating", book(position=0, rating="CCC"), 400, "positions[b1].rating"),
    ("an expired option", book(position=2, expiry=0), 400, "positions[o1].expiry"),
    ("a duplicate position id", book(position=3, id="b1"), 400, "positions[b1].id"),
    ("tenors out of order", book(curves={"USD": {"tenors": [5, 1], "zero_rates": [0.04, 0.05]}}), 400, "curves.USD"),
    ("an fx rate for the base currency", book(fx={"USD": 1.0, "EUR": 1.08}), 400, "portfolio.fx"),
    ("a portfolio file that is not JSON",
     {**GOOD, "model": {"name": "portfolio", "params": {"portfolio": "s3://{bucket}/inputs/book.txt"}}}, 400, "is not JSON"),
    ("a portfolio on the server's disk", {**GOOD, "model": {"name": "portfolio", "params": {"portfolio": "/etc/hosts"}}},
     400, "model.params.portfolio"),
    ("an empty sample", {**GOOD, "model": {"name": "portfolio", "params": {"portfolio": {"sample": {"positions": 0, "seed": 1}}}}},
     400, "sample.positions"),
]
# (what, the scenarios of the runs held in flight, the limits then (from the totals in flight), status, the limit named)
LIMITS: list[tuple[str, list[int], Callable[[Totals], dict[str, int]], int, str]] = [
    ("too many active runs", [100, 100], lambda held: {"max_active_runs": held.runs}, 429, "max_active_runs"),
    ("more scenarios in flight than the quota", [5_000],
     lambda held: {"max_scenarios_in_flight": held.scenarios + GOOD["scenarios"]["count"] - 1}, 429, "max_scenarios_in_flight"),
    ("a run larger than the whole quota", [], lambda held: {"max_scenarios_in_flight": 1_000}, 400, "max_scenarios_in_flight"),
]
# (what, CLI arguments with {dir} for the spec folder, words on stderr)
CLI = [
    ("a spec file that does not exist", ["submit", "{dir}/missing.yaml"], "no such file"),
    ("a spec that is not YAML", ["submit", "{dir}/broken.yaml"], "not valid YAML"),
    ("a spec that is a list", ["submit", "{dir}/list.yaml"], "spec"),
    ("a zero shard size in the spec", ["submit", "{dir}/zero.yaml"], "shard_size"),
    ("a scenario file the server cannot read", ["submit", "{dir}/nofile.yaml"], "scenarios.uri"),
    ("demo with no scenarios", ["demo", "--scenarios", "0"], "scenarios"),
    ("demo with zero workers", ["demo", "--workers", "0"], "workers"),
]


@pytest.fixture(scope="module")
def api(local_stack) -> Iterator[LocalApi]:  # noqa: ANN001
    server = LocalApi([local_stack.api_user], REGION).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def signer(local_stack) -> SigV4RequestAuth:  # noqa: ANN001
    return SigV4RequestAuth(local_stack.api_user.credentials(), REGION)


@pytest.fixture(scope="module")
def inputs(local_stack, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:  # noqa: ANN001
    """The bad files, uploaded under inputs/ before anything is measured."""
    bucket = local_stack.settings.bucket
    names = load_model("portfolio", DEFAULT_MODEL_PARAMS).factors.names[:3]
    rng = np.random.default_rng(1)
    good = {"scenario_id": np.arange(ROWS), **{n: rng.normal(0, 0.01, ROWS) for n in names}}
    tables = {
        "good.parquet": good,
        "no-id.parquet": {n: good[n] for n in names},
        "nan.parquet": {**good, names[0]: np.where(np.arange(ROWS) == 7, np.nan, good[names[0]])},
        "inf.parquet": {**good, names[1]: np.where(np.arange(ROWS) == 9, np.inf, good[names[1]])},
        "text.parquet": {**good, names[2]: np.array(["up"] * ROWS)},
        "unknown-factor.parquet": {**good, "rate.XXX.5": np.zeros(ROWS)},
        "empty.parquet": {k: v[:0] for k, v in good.items()},
    }
    s3 = client("s3")
    for name, columns in tables.items():
        sink = pa.BufferOutputStream()
        pq.write_table(pa.table(columns), sink)
        s3.put_object(Bucket=bucket, Key=f"inputs/{name}", Body=sink.getvalue().to_pybytes())
    s3.put_object(Bucket=bucket, Key="inputs/corrupt.parquet", Body=b"PAR1" + os.urandom(2048))
    s3.put_object(Bucket=bucket, Key="inputs/book.txt", Body=b"positions: [bond]")
    specs = tmp_path_factory.mktemp("specs")
    (specs / "broken.yaml").write_text("scenarios: {count: 10\nshard_size: [\n")
    (specs / "list.yaml").write_text("- scenarios\n- workers\n")
    (specs / "zero.yaml").write_text("scenarios: {count: 1000}\nshard_size: 0\n")
    (specs / "nofile.yaml").write_text(f"scenarios: {{kind: file, uri: 's3://{bucket}/inputs/nowhere.parquet'}}\n")
    return {"bucket": bucket, "specs": specs}


def footprint(stack) -> dict[str, int]:  # noqa: ANN001
    """What a run would leave: items, objects, work messages, executions. Taken once the
    tracker's queue is drained, so that an event on its way is counted."""
    settings = stack.settings
    sqs = client("sqs")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        attrs = sqs.get_queue_attributes(QueueUrl=settings.tracker_queue_url, AttributeNames=["All"])["Attributes"]
        if attrs["ApproximateNumberOfMessages"] == "0" and attrs["ApproximateNumberOfMessagesNotVisible"] == "0":
            break
        time.sleep(0.2)
    work = [sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"] for url in work_queues.open_queues()]
    return {
        "runs": client("dynamodb").scan(TableName=settings.runs_table, Select="COUNT")["Count"],
        "shards": client("dynamodb").scan(TableName=settings.shards_table, Select="COUNT")["Count"],
        "objects": client("s3").list_objects_v2(Bucket=settings.bucket).get("KeyCount", 0),
        "work_queues": len(work),
        "work_messages": sum(int(w["ApproximateNumberOfMessages"]) + int(w["ApproximateNumberOfMessagesNotVisible"]) for w in work),
        "executions": len(client("stepfunctions").list_executions(stateMachineArn=settings.state_machine_arn)["executions"]),
        "admissions": client("dynamodb").scan(TableName=settings.admission_table, Select="COUNT")["Count"],
    }


@pytest.fixture(scope="module")
def quiet(local_stack, inputs) -> None:  # noqa: ANN001
    """Runs of earlier tests finished: from here on the footprint moves only if a case leaks."""
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        items = client("dynamodb").scan(TableName=local_stack.settings.runs_table)["Items"]
        if all(i["status"]["S"] in ("COMPLETE", "FAILED", "CANCELLED") for i in items):
            return
        time.sleep(0.5)


HTTP_CASES = [("API", *c) for c in API] + [("scenario file", *c) for c in SCENARIO_FILES] + [("portfolio", *c) for c in PORTFOLIOS]


@pytest.mark.parametrize(("edge", "what", "body", "status", "words"), HTTP_CASES, ids=[f"{c[0]}: {c[1]}" for c in HTTP_CASES])
def test_bad_submissions_are_named_and_leave_nothing(
    api: LocalApi, signer: SigV4RequestAuth, local_stack, inputs: dict, quiet: None, edge: str, what: str, body: Any,  # noqa: ANN001
    status: int, words: str,
) -> None:
    if isinstance(body, dict):
        body = json.dumps(body).replace("{bucket}", inputs["bucket"])
    before = footprint(local_stack)
    response = requests.post(api.url + "/runs", data=body, auth=signer, timeout=30)
    assert response.status_code == status, response.text
    assert words in response.text, response.text
    assert footprint(local_stack) == before


@pytest.mark.parametrize(("what", "held", "limits", "status", "limit"), LIMITS, ids=[c[0] for c in LIMITS])
def test_a_submission_over_a_limit_is_refused_naming_it_and_leaves_nothing(
    api: LocalApi, signer: SigV4RequestAuth, local_stack, quiet: None, what: str, held: list[int],  # noqa: ANN001
    limits: Callable[[Totals], dict[str, int]], status: int, limit: str,
) -> None:
    """Runs held in flight (their admissions), the limits set just below what one more run
    needs: the API refuses the run with the limit, the figures and when to try again."""
    store = AdmissionStore(local_stack.settings.admission_table)
    tickets = [Ticket(f"held-{what[:12]}-{i}", 1, n, utcnow()) for i, n in enumerate(held)]
    for ticket in tickets:
        assert store.admit(ticket, 10**6, 10**12)
    use_settings(local_stack.settings.model_copy(update=limits(store.totals())))
    try:
        before = footprint(local_stack)
        response = requests.post(api.url + "/runs", json=GOOD, auth=signer, timeout=30)
        assert response.status_code == status, response.text
        assert limit in response.json()["error"] and f"SCENGRID_{limit.upper()}" in response.json()["error"]
        assert footprint(local_stack) == before
        if status == 429:
            answer = response.json()
            assert answer["limit"] == limit and answer["current"] >= answer["maximum"] - answer["requested"] + 1
            assert int(response.headers["Retry-After"]) == answer["retry_after_s"] > 0
    finally:
        use_settings(local_stack.settings)
        for ticket in tickets:
            store.release(ticket)


@pytest.mark.parametrize(("what", "args", "words"), CLI, ids=[c[0] for c in CLI])
def test_bad_cli_input_exits_2_naming_the_field_and_leaves_nothing(
    api: LocalApi, local_stack, inputs: dict, quiet: None, what: str, args: list[str], words: str,  # noqa: ANN001
    tmp_path: Path,
) -> None:
    credentials = write_profile(tmp_path / "credentials", local_stack.api_user, "bad-inputs")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(SCENGRID_API_URL=api.url, SCENGRID_REGION=REGION, AWS_PROFILE="bad-inputs", AWS_SHARED_CREDENTIALS_FILE=str(credentials))
    before = footprint(local_stack)
    done = subprocess.run(
        [sys.executable, "-m", "scengrid_cli.cli", *(a.replace("{dir}", str(inputs["specs"])) for a in args)],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )
    assert done.returncode == 2, done.stderr
    assert words in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
    assert footprint(local_stack) == before



def test_the_footprint_sees_a_run_that_was_accepted(api: LocalApi, signer: SigV4RequestAuth, local_stack, quiet: None) -> None:  # noqa: ANN001
    """The control: a good submission moves the footprint the cases above keep still."""
    before = footprint(local_stack)
    response = requests.post(api.url + "/runs", json=GOOD, auth=signer, timeout=30)
    assert response.status_code == 202, response.text
    deadline = time.monotonic() + 60
    while footprint(local_stack)["runs"] == before["runs"]:
        assert time.monotonic() < deadline, "the accepted run never reached the runs table"
        time.sleep(0.2)
