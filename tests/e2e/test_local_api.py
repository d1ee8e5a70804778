"""The user's surface end to end: `scengrid local up`, then the CLI against its API."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

pytestmark = pytest.mark.e2e


def scengrid(cwd: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [sys.executable, "-m", "scengrid_cli.cli", *args], cwd=cwd, capture_output=True, text=True, timeout=300, check=False
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


def test_auth_is_required(stack_dir: Path) -> None:
    state = json.loads((stack_dir / ".scengrid" / "local.json").read_text())
    assert requests.get(state["api_url"] + "/runs", timeout=10).status_code == 401
    assert requests.get(state["api_url"] + "/runs", headers={"x-api-key": "nope"}, timeout=10).status_code == 403
    assert requests.get(state["api_url"] + "/runs", headers={"x-api-key": state["api_key"]}, timeout=10).status_code == 200


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
    assert (stack_dir / "results" / run_id / "pnl" / "pnl.parquet").stat().st_size > 0
    assert (stack_dir / "results" / run_id / "report.html").is_file()
    query = "select count(*) as n, count(distinct scenario_id) as ids, min(pnl) as worst from pnl"
    answer = last_json(scengrid(stack_dir, "results", run_id, "--out", str(stack_dir / "results"), "--sql", query, "--json"))
    assert answer["columns"] == ["n", "ids", "worst"] and answer["rows"][0][:2] == [10_000, 10_000]
    assert answer["rows"][0][2] == pytest.approx(fetched["summary"]["worst"][0]["pnl"])
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
    plan = json.loads(planned.stdout.strip().splitlines()[-1])[0]
    run_id = planned.stderr.split("submitted run ")[1].split()[0]
    final = last_json(scengrid(stack_dir, "status", run_id, "--watch", "--json"))
    assert final["status"] == "COMPLETE" and final["progress"]["shards_total"] == plan["run"]["shards"]
    summary = last_json(scengrid(stack_dir, "results", run_id, "--out", str(stack_dir / "results"), "--json"))["summary"]
    assert summary["plan"]["cost_usd_mean"] == pytest.approx(plan["run"]["cost_usd_mean"], rel=1e-3)
    assert summary["shard_size"] == plan["run"]["shard_size"] and summary["sizing"]["reasons"]
    report = (stack_dir / "results" / run_id / "report.html").read_text()
    assert f"${plan['run']['cost_usd_mean']:,.2f} mean" in report
