"""The worker's model pool: N processes give the same bits as one, and a model process that
dies fails its shard with a reason (no hang), after which a new pool takes the next shard.

Each case runs in a fresh interpreter: the pool's fork server keeps the environment it started
with, and the test model reads its crash switch from there."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.plugins import plugin_path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = """
import json, sys
import numpy as np
from services.worker.evaluator import ShardEvaluator
from scengrid.errors import ModelFailure
from scengrid.spec import DEFAULT_MODEL, DEFAULT_MODEL_PARAMS, GeneratedScenarios, ModelRef
from scengrid.work import ShardWork

def work(model, params, start, count, total):
    return ShardWork(run_id="r", shard_id=f"{start:06d}", start=start, count=count,
                     model=ModelRef(name=model, params=params), scenarios=GeneratedScenarios(count=total, seed=11))

if __name__ == "__main__":
    case = sys.argv[1]
    if case == "bits":
        one, many = ShardEvaluator(1), ShardEvaluator(3)
        shard = work(DEFAULT_MODEL, DEFAULT_MODEL_PARAMS, 1500, 6000, 9000)
        a, b = one.evaluate(shard).columns, many.evaluate(shard).columns
        print(json.dumps({"same": sorted(a) == sorted(b) and all(np.array_equal(a[k].view(np.uint64), b[k].view(np.uint64)) for k in a),
                          "rows": len(a["pnl"])}))
        many.close()
    else:
        evaluator = ShardEvaluator(2)
        try:
            evaluator.evaluate(work("test-crash", {}, 7500, 2000, 9500))  # ends in the run's short last block
            failed = None
        except ModelFailure as exc:
            failed = str(exc)
        after = evaluator.evaluate(work("test-crash", {}, 0, 4096, 9500)).columns["pnl"]  # full blocks only
        evaluator.close()
        print(json.dumps({"failed": failed, "after": len(after)}))
"""


def run(case: str, tmp_path: Path, **env: str) -> dict:
    plugins = plugin_path(tmp_path / "plugins")
    script = tmp_path / "case.py"
    script.write_text(SCRIPT)
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(plugins)]), **env}
    out = subprocess.run([sys.executable, str(script), case], env=environment, capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_a_pool_of_processes_gives_the_bits_of_one_process(tmp_path: Path) -> None:
    assert run("bits", tmp_path) == {"same": True, "rows": 6000}


@pytest.mark.parametrize(("how", "reason"), [("exit", "exit code 3")])
def test_a_model_process_that_dies_fails_its_shard_and_the_next_shard_gets_a_new_pool(tmp_path: Path, how: str, reason: str) -> None:
    result = run("crash", tmp_path, SCENGRID_TEST_CRASH=how)
    assert result["failed"] == f"a model process died while evaluating the shard ({reason})"
    assert result["after"] == 4096
