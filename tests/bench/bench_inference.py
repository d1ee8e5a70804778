"""The PD model's serving figures, in one run (one JSON object on stdout):

- cold start, for the default and the large model: a fresh process loads the model from S3
  (the emulator, on loopback) as the function does at its first invocation; onnxruntime's
  import, the download with its SHA-256 check, and the session's creation, each the median of
  three processes;
- warm latency p50/p99 for batches of 1, 500 and 5,000 rows: the handler (a direct Invoke:
  the payload decoded, validated, predicted and the response encoded), the onnxruntime
  session alone, and scikit-learn's predict of the same estimator on the same rows; the ratio
  is onnxruntime's p50 to scikit-learn's (goal: at most 0.5 at 500 rows).

Both models are trained first (about a minute; deterministic).

    python tests/bench/bench_inference.py [--repeats 3]"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

BUCKET = "bench-inference"
BATCHES = {1: 500, 500: 300, 5_000: 100}  # rows: timed calls
GOAL_RATIO_AT_500 = 0.5
COLD_START = """
import json, sys, time
from pathlib import Path
started = time.perf_counter()
import onnxruntime
imported = time.perf_counter()
from scengrid.inference.loader import ModelHolder, S3ModelSource
from scengrid.settings import cpu_count
model = ModelHolder(S3ModelSource(sys.argv[1]), Path(sys.argv[2]), check_s=30, threads=cpu_count()).get()
print(json.dumps({"import_onnxruntime_s": imported - started, "download_verify_s": model.fetch_s, "session_s": model.session_s}))
"""


def _env(url: str, log_file: str) -> dict[str, str]:
    return {**os.environ, "SCENGRID_ENDPOINT_URL": url, "SCENGRID_BUCKET": BUCKET, "AWS_ACCESS_KEY_ID": "x",
            "AWS_SECRET_ACCESS_KEY": "x", "AWS_DEFAULT_REGION": "us-east-1", "SCENGRID_LOG_FILE": log_file,
            "POWERTOOLS_TRACE_DISABLED": "true", "POWERTOOLS_METRICS_DISABLED": "true"}


def cold_start(uri: str, env: dict[str, str], repeats: int, scratch: Path) -> dict[str, float]:
    runs = []
    for i in range(repeats):
        done = subprocess.run([sys.executable, "-c", COLD_START, uri, str(scratch / f"cache-{uri[-12:]}-{i}")],
                              env=env, capture_output=True, text=True, check=True)
        runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
    median = {key: round(statistics.median(r[key] for r in runs), 4) for key in runs[0]}
    median["total_s"] = round(sum(median.values()), 4)
    return median


def percentiles(seconds: list[float]) -> tuple[float, float]:
    p50, p99 = np.percentile(np.array(seconds) * 1e3, [50, 99])
    return round(float(p50), 4), round(float(p99), 4)


def timed(calls: dict[str, Any], repeats: int) -> dict[str, list[float]]:
    """Seconds per call of each, taken in turn (so that a noisy moment hits them all alike),
    after a warm-up."""
    for _ in range(min(20, repeats)):
        for call in calls.values():
            call()
    out: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(repeats):
        for name, call in calls.items():
            started = time.perf_counter()
            call()
            out[name].append(time.perf_counter() - started)
    return out


def warm(model_file: Path, estimator: Any) -> dict[str, Any]:
    """Warm latencies of one model, served from its file (no network in the timings)."""
    from scengrid_cli.training import ground_truth
    from scengrid.inference.loader import model_holder
    from scengrid_cli.training.train import sklearn_pd
    from scengrid_cli.local.pollers import LambdaContext
    from scengrid.settings import get_settings
    from services.inference.handler import lambda_handler

    os.environ["SCENGRID_MODEL_URI"] = str(model_file)
    get_settings.cache_clear()
    session = model_holder().get()
    context = LambdaContext("scengrid-inference")
    results: dict[str, Any] = {}
    for rows, repeats in BATCHES.items():
        features = ground_truth.sample_features(rows, np.random.default_rng(rows)).astype(np.float32)
        payload = json.dumps({"rows": features.tolist()})
        seconds = timed({
            "handler": lambda: json.dumps(lambda_handler(json.loads(payload), context)),
            "onnx": lambda: session.predict(features),
            "sklearn": lambda: sklearn_pd(estimator, features),
        }, repeats)
        handler, onnx, sklearn = (percentiles(seconds[name]) for name in ("handler", "onnx", "sklearn"))
        results[str(rows)] = {
            "handler_p50_ms": handler[0], "handler_p99_ms": handler[1],
            "onnx_p50_ms": onnx[0], "onnx_p99_ms": onnx[1],
            "sklearn_p50_ms": sklearn[0], "sklearn_p99_ms": sklearn[1],
            "ratio_onnx_to_sklearn_p50": round(onnx[0] / sklearn[0], 4),
            "ratio_handler_to_sklearn_p50": round(handler[0] / sklearn[0], 4),
        }
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3, help="processes per cold start (default %(default)s)")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    import onnxruntime
    import sklearn

    from scengrid.aws import client
    from scengrid.inference.publish import publish_model
    from scengrid_cli.training.train import train
    from scengrid_cli.local.emulator import Emulator
    from scengrid.settings import cpu_count, get_settings

    with tempfile.TemporaryDirectory(prefix="scengrid-bench-inference-") as scratch_dir:
        scratch = Path(scratch_dir)
        env = _env("", str(scratch / "services.log"))
        os.environ.update({k: v for k, v in env.items() if k != "SCENGRID_ENDPOINT_URL"})
        trained = {variant: train(variant, scratch / "models") for variant in ("default", "large")}
        emulator = Emulator().start()
        try:
            env["SCENGRID_ENDPOINT_URL"] = os.environ["SCENGRID_ENDPOINT_URL"] = emulator.url
            get_settings.cache_clear()
            client("s3").create_bucket(Bucket=BUCKET)
            uris = {v: f"s3://{BUCKET}/models/{t.path.name}" for v, t in trained.items()}
            for variant, model in trained.items():
                publish_model(model.path, uris[variant])
            cold = {variant: cold_start(uris[variant], env, args.repeats, scratch) for variant in trained}
        finally:
            emulator.stop()
        warm_figures = {variant: warm(model.path, model.estimator) for variant, model in trained.items()}
    figures = {
        "machine": {"cpus": cpu_count(), "python": sys.version.split()[0], "onnxruntime": onnxruntime.__version__,
                    "scikit_learn": sklearn.__version__},
        "models": {v: {"estimator": t.card["estimator"], "size_bytes": t.card["size_bytes"], "sha256": t.sha256}
                   for v, t in trained.items()},
        "cold_start_s": cold,
        "warm_ms": warm_figures,
        "goal": {"ratio_onnx_to_sklearn_at_500_rows": GOAL_RATIO_AT_500,
                 "met": warm_figures["default"]["500"]["ratio_onnx_to_sklearn_p50"] <= GOAL_RATIO_AT_500},
    }
    sys.stdout.write(json.dumps(figures) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
