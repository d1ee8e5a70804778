"""The user's surface end to end: `scengrid local up`, then the CLI against its API, every
request signed (IAM auth, SigV4) with the profile the local stack wrote."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import boto3
import pyarrow.parquet as pq
import pytest
import requests

from scengrid.inference.publish import SHA256_METADATA

pytestmark = pytest.mark.e2e
REFUSED_FIX = "AWS_PROFILE=scengrid-local AWS_SHARED_CREDENTIALS_FILE=.scengrid/credentials"


def user_env(**extra: str) -> dict[str, str]:
    """A user's shell: none of the AWS credentials or profile this test process may hold (the
    in-process stack puts the emulator's in its environment), no API URL set."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_") and k not in ("SCENGRID_API_URL", "SCENGRID_REGION")}
    return {**env, **extra}


def scengrid(cwd: Path, *args: str, check: bool = True, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [sys.executable, "-m", "scengrid_cli.cli", *args], cwd=cwd, capture_output=True, text=True, timeout=300, check=False,
        env=env or user_env(),
    )
    if check:
        assert done.returncode == 0, f"scengrid {' '.join(args)}: {done.stderr[-2000:]}"
    return done


def last_json(done: subprocess.CompletedProcess) -> dict:
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def stack_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    cwd = tmp_path_factory.mktemp("local")
    scengrid(cwd, "local", "up", "--detach")
    try:
        yield cwd
    finally:
        scengrid(cwd, "local", "down")
        assert not (cwd / ".scengrid" / "local.json").exists()


def write_spec(cwd: Path, name: str, scenarios: int, shard_size: int, workers: int) -> Path:
    path = cwd / name
    path.write_text(f"scenarios:\n  count: {scenarios}\n  seed: 5\nshard_size: {shard_size}\nworkers: {workers}\n")
    return path


def state_of(stack_dir: Path) -> dict:
    return json.loads((stack_dir / ".scengrid" / "local.json").read_text())


def test_the_stack_writes_its_key_as_a_profile_for_its_owner_only(stack_dir: Path) -> None:
    state = state_of(stack_dir)
    assert state["profile"] == "scengrid-local" and state["region"] == "us-east-1" and "api_key" not in state
    credentials = Path(state["credentials_file"])
    assert credentials == (stack_dir / ".scengrid" / "credentials").resolve()
    assert stat.S_IMODE(credentials.stat().st_mode) == 0o600
    text = credentials.read_text()
    assert text.startswith("[scengrid-local]\n") and "aws_access_key_id = " in text and "aws_secret_access_key = " in text


def test_submit_is_signed_with_the_local_profile_and_unsigned_requests_are_refused(stack_dir: Path) -> None:
    spec = write_spec(stack_dir, "signed.yaml", 2_000, 1_000, 1)
    submitted = scengrid(stack_dir, "submit", str(spec))
    assert "submitted" in submitted.stdout
    run_id = submitted.stdout.split("run ")[1].split()[0]
    shown = last_json(scengrid(stack_dir, "status", run_id, "--watch", "--json"))
    assert shown["run_id"] == run_id and shown["status"] == "COMPLETE"

    url = state_of(stack_dir)["api_url"] + "/runs"
    unsigned = requests.post(url, json={"scenarios": {"count": 1000}}, timeout=10)
    assert unsigned.status_code == 403 and unsigned.json() == {"message": "Missing Authentication Token"}
    if shutil.which("curl"):
        curl = subprocess.run(["curl", "-s", "-w", "\n%{http_code}", "-X", "POST", "-H", "Content-Type: application/json",
                               "-d", '{"scenarios": {"count": 1000}}', url], capture_output=True, text=True, timeout=30)
        body, code = curl.stdout.rsplit("\n", 1)
        assert code == "403" and json.loads(body) == {"message": "Missing Authentication Token"}


def test_wrong_credentials_in_the_environment_are_refused_with_the_fix(stack_dir: Path) -> None:
    spec = write_spec(stack_dir, "refused.yaml", 1_000, 1_000, 1)
    wrong = user_env(AWS_ACCESS_KEY_ID="AKIAWRONGWRONGWRONG1", AWS_SECRET_ACCESS_KEY="wrong")
    refused = scengrid(stack_dir, "submit", str(spec), check=False, env=wrong)
    assert refused.returncode == 5, refused.stderr
    assert "refused" in refused.stderr and "The security token included in the request is invalid" in refused.stderr
    assert "environment variables AWS_ACCESS_KEY_ID" in refused.stderr  # where the credentials came from
    assert "unset AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY" in refused.stderr and REFUSED_FIX in refused.stderr
    assert "Traceback" not in refused.stderr


def test_another_profile_is_refused_with_the_fix_and_no_credentials_say_how_to_give_them(stack_dir: Path, tmp_path: Path) -> None:
    other = tmp_path / "credentials"
    other.write_text("[someone]\naws_access_key_id = AKIASOMEONESOMEONE12\naws_secret_access_key = x\n")
    refused = scengrid(stack_dir, "runs", check=False, env=user_env(AWS_PROFILE="someone", AWS_SHARED_CREDENTIALS_FILE=str(other)))
    assert refused.returncode == 5 and f"profile someone from {other}" in refused.stderr, refused.stderr
    assert REFUSED_FIX in refused.stderr and "Traceback" not in refused.stderr

    nowhere = {"AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"), "AWS_CONFIG_FILE": str(tmp_path / "none"),
               "AWS_EC2_METADATA_DISABLED": "true", "SCENGRID_API_URL": state_of(stack_dir)["api_url"], "SCENGRID_REGION": "us-east-1"}
    missing = scengrid(stack_dir, "runs", check=False, env=user_env(**nowhere))
    assert missing.returncode == 5 and "no AWS credentials" in missing.stderr, missing.stderr
    assert "AWS_ACCESS_KEY_ID" in missing.stderr and "AWS_PROFILE" in missing.stderr and "Traceback" not in missing.stderr


def emulator_s3(stack_dir: Path) -> tuple[object, str]:
    """The emulator's S3 and the stack's bucket, as an operator reaches them."""
    session = boto3.session.Session(aws_access_key_id="operator", aws_secret_access_key="operator", region_name="us-east-1")
    url = state_of(stack_dir)["emulator_url"]
    outputs = session.client("cloudformation", endpoint_url=url).describe_stacks(StackName="scengrid")["Stacks"][0]["Outputs"]
    return session.client("s3", endpoint_url=url), next(o["OutputValue"] for o in outputs if o["OutputKey"] == "BucketName")


def test_a_failed_run_is_retried_through_the_api(stack_dir: Path, small_pd_model) -> None:  # noqa: ANN001
    s3, bucket = emulator_s3(stack_dir)
    s3.put_object(Bucket=bucket, Key="models/pd.onnx", Body=b"not a model", Metadata={SHA256_METADATA: hashlib.sha256(b"not a model").hexdigest()})
    spec = stack_dir / "overlay.yaml"
    spec.write_text("model: {name: portfolio, params: {portfolio: {sample: {positions: 200, seed: 7}}, credit_overlay: {lgd: 0.6, mode: lambda}}}\n"
                    "scenarios: {count: 4000, seed: 5}\nshard_size: 2000\nworkers: 1\n")
    run_id = last_json(scengrid(stack_dir, "submit", str(spec), "--json"))["run_id"]
    failed = scengrid(stack_dir, "status", run_id, "--watch", "--json", check=False)
    assert failed.returncode == 1 and last_json(failed)["status"] == "FAILED", failed.stderr[-2000:]

    model = small_pd_model.path.read_bytes()  # the fix: publish a real model, then retry
    s3.put_object(Bucket=bucket, Key="models/pd.onnx", Body=model, Metadata={SHA256_METADATA: hashlib.sha256(model).hexdigest()})
    retried = last_json(scengrid(stack_dir, "retry", run_id, "--json"))
    assert retried["run_id"] == run_id and retried["round"] == 2
    deadline = time.monotonic() + 60
    while last_json(scengrid(stack_dir, "status", run_id, "--json"))["status"] == "FAILED":  # until the tracker reopens it
        assert time.monotonic() < deadline
        time.sleep(0.3)
    final = last_json(scengrid(stack_dir, "status", run_id, "--watch", "--json"))
    assert final["status"] == "COMPLETE" and final["progress"]["shards_done"] == 2, final


def test_submit_watch_and_fetch_results(stack_dir: Path) -> None:
    spec = write_spec(stack_dir, "spec.yaml", 10_000, 2_500, 2)
    first = last_json(scengrid(stack_dir, "submit", str(spec), "--idempotency-key", "k-1", "--json"))
    again = last_json(scengrid(stack_dir, "submit", str(spec), "--idempotency-key", "k-1", "--json"))
    assert again["run_id"] == first["run_id"]
    run_id = first["run_id"]

    final = last_json(scengrid(stack_dir, "status", run_id, "--watch", "--json"))
    assert final["status"] == "COMPLETE" and final["progress"]["shards_done"] == 4

    fetched = last_json(scengrid(stack_dir, "results", run_id, "--out", str(stack_dir / "results"), "--json"))
    assert fetched["summary"]["scenarios"] == 10_000
    dataset = sorted((stack_dir / "results" / run_id / "pnl").glob("*.parquet"))
    assert [f.name for f in dataset] == [f"{i:06d}.parquet" for i in range(4)]  # one file per shard, nothing merged
    assert not (stack_dir / "results" / run_id / "pnl.parquet").exists()
    assert (stack_dir / "results" / run_id / "report.html").is_file()
    query = "select count(*) as n, count(distinct scenario_id) as ids, min(pnl) as worst from pnl"
    answer = last_json(scengrid(stack_dir, "results", run_id, "--out", str(stack_dir / "results"), "--sql", query, "--json"))
    assert answer["columns"] == ["n", "ids", "worst"] and answer["rows"][0][:2] == [10_000, 10_000]
    assert answer["rows"][0][2] == pytest.approx(fetched["summary"]["worst"][0]["pnl"])
    merged = last_json(scengrid(stack_dir, "results", run_id, "--out", str(stack_dir / "results"), "--merge", "--json"))
    table = pq.read_table(merged["merged"])
    assert merged["merged"] == str(stack_dir / "results" / run_id / "pnl.parquet")
    assert table.num_rows == 10_000 and table.column("scenario_id").to_pylist() == list(range(10_000))
    assert table.column("pnl").to_numpy().min() == fetched["summary"]["worst"][0]["pnl"]
    bad_sql = scengrid(stack_dir, "results", run_id, "--out", str(stack_dir / "results"), "--sql", "select nope from pnl", check=False)
    assert bad_sql.returncode == 2 and "--sql" in bad_sql.stderr
    listed = last_json(scengrid(stack_dir, "runs", "--json"))
    assert run_id in {r["run_id"] for r in listed["runs"]}


def test_a_cancelled_run_ends_cancelled(stack_dir: Path) -> None:
    spec = write_spec(stack_dir, "big.yaml", 400_000, 4_000, 1)
    run_id = last_json(scengrid(stack_dir, "submit", str(spec), "--json"))["run_id"]
    deadline = time.monotonic() + 60
    while True:  # in flight, the status shows VaR 99% so far, from the shards done
        shown = scengrid(stack_dir, "status", run_id, "--json", check=False)
        if shown.returncode == 0 and last_json(shown).get("partial_var_99"):
            break
        assert time.monotonic() < deadline
        time.sleep(0.3)
    partial = last_json(shown)["partial_var_99"]
    assert partial["low"] <= partial["estimate"] <= partial["high"] and partial["shards"] >= 2
    assert "VaR 99% so far" in scengrid(stack_dir, "status", run_id).stdout
    scengrid(stack_dir, "cancel", run_id)
    while True:
        view = last_json(scengrid(stack_dir, "status", run_id, "--json"))
        if view["status"] != "RUNNING" and view["status"] != "PENDING":
            break
        assert time.monotonic() < deadline + 60
        time.sleep(0.5)
    assert view["status"] == "CANCELLED"
    assert view["progress"]["shards_done"] < 100
    refused = scengrid(stack_dir, "retry", run_id, check=False)
    assert refused.returncode == 3 and "409" in refused.stderr


def test_errors_say_what_to_do(stack_dir: Path) -> None:
    missing = scengrid(stack_dir, "status", "no-such-run", check=False)
    assert missing.returncode == 4 and "scengrid runs" in missing.stderr
    bad = write_spec(stack_dir, "bad.yaml", 1000, 0, 1)
    refused = scengrid(stack_dir, "submit", str(bad), check=False)
    assert refused.returncode == 2 and "shard_size" in refused.stderr


def test_a_planned_run_keeps_its_predicted_cost(stack_dir: Path) -> None:
    spec = stack_dir / "auto.yaml"
    spec.write_text("scenarios: {count: 20000, seed: 8}\n")  # shard_size and workers: auto
    planned = scengrid(stack_dir, "plan", str(spec), "--max-cost", "100", "--submit", "--json")
    plan = json.loads(planned.stdout.strip().splitlines()[-1])["plans"][0]
    run_id = planned.stderr.split("submitted run ")[1].split()[0]
    final = last_json(scengrid(stack_dir, "status", run_id, "--watch", "--json"))
    assert final["status"] == "COMPLETE" and final["progress"]["shards_total"] == plan["run"]["shards"]
    summary = last_json(scengrid(stack_dir, "results", run_id, "--out", str(stack_dir / "results"), "--json"))["summary"]
    assert summary["plan"]["cost_usd_mean"] == pytest.approx(plan["run"]["cost_usd_mean"], rel=1e-3)
    assert summary["shard_size"] == plan["run"]["shard_size"] and summary["sizing"]["reasons"]
    report = (stack_dir / "results" / run_id / "report.html").read_text()
    assert f"${plan['run']['cost_usd_mean']:,.2f} mean" in report
