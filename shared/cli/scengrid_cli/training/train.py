"""Train the PD model on the synthetic ground truth and export it to ONNX (``make model``).

    python -m scengrid_cli.training.train --out build/models            # pd.onnx, the default
    python -m scengrid_cli.training.train --out build/models --large    # pd-large.onnx, >= 100 MB

Variants (the same features, the same output, deterministic for a seed):
- ``default``: standardised features into an MLP (64, 64) trained on logit(PD), 100,000 rows;
  the PD is smooth in the shocks, so small scenario moves give small PD moves.
- ``large``: a random forest of 12 fully grown trees on 200,000 rows, about 125 MB of ONNX,
  for measuring cold starts with a big model.
- ``small``: an MLP (32, 32) on 16,000 rows, trained in a few seconds, for tests.

The exported graph is scikit-learn's (skl2onnx) followed by a Sigmoid: input ``features``
(rows, 5) float32 in the order of ``contract.FEATURES``, output ``pd`` (rows, 1). Beside the
model go ``<name>.onnx.sha256`` (its SHA-256, as sha256sum writes it) and ``<name>.json``
(what was trained, how long it took, and its error against the ground truth on held-out rows).
Training needs the dev dependencies (scikit-learn, skl2onnx, onnx); serving needs onnxruntime."""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy.special import expit

from scengrid_cli.training import ground_truth
from scengrid.inference.contract import FEATURES
from scengrid.inference.publish import DEFAULT_MODEL_DIR, model_file_name, sha256_file, write_checksum

SEED = 7
HOLDOUT_ROWS = 20_000
VARIANTS: dict[str, dict[str, Any]] = {
    "default": {"rows": 100_000, "kind": "mlp", "hidden": (64, 64), "max_iter": 200},
    "small": {"rows": 16_000, "kind": "mlp", "hidden": (32, 32), "max_iter": 40},
    "large": {"rows": 200_000, "kind": "forest", "trees": 12},
}


@dataclass(frozen=True)
class TrainedModel:
    path: Path
    sha256: str
    estimator: Any  # the scikit-learn estimator, predicting logit(PD)
    card: dict[str, Any]


def sklearn_pd(estimator: Any, features: np.ndarray) -> np.ndarray:
    """The PD scikit-learn predicts for (n, 5) rows (the ONNX model's reference)."""
    return expit(estimator.predict(np.asarray(features, dtype=np.float32)))


def _estimator(spec: dict[str, Any], seed: int) -> Any:
    from sklearn.ensemble import RandomForestRegressor
    from sklearn.neural_network import MLPRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if spec["kind"] == "forest":
        return RandomForestRegressor(n_estimators=spec["trees"], min_samples_leaf=1, random_state=seed, n_jobs=-1)
    mlp = MLPRegressor(
        hidden_layer_sizes=spec["hidden"], batch_size=256, learning_rate_init=2e-3, max_iter=spec["max_iter"],
        early_stopping=True, n_iter_no_change=10, tol=1e-6, random_state=seed,
    )
    return make_pipeline(StandardScaler(), mlp)


def _to_onnx(estimator: Any, variant: str, rows: int, seed: int) -> bytes:
    """scikit-learn's graph, then a Sigmoid from logit(PD) to ``pd``; the contract's feature
    names in the metadata, which the loader checks."""
    from onnx import OperatorSetIdProto, TensorProto, helper
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType

    model = convert_sklearn(
        estimator, initial_types=[("features", FloatTensorType([None, len(FEATURES)]))],
        target_opset={"": 17, "ai.onnx.ml": 3},
    )
    # skl2onnx lists the opsets in set order, which varies from one interpreter to the next
    opsets = sorted((o.domain, o.version) for o in model.opset_import)
    del model.opset_import[:]
    model.opset_import.extend(OperatorSetIdProto(domain=d, version=v) for d, v in opsets)
    graph = model.graph
    logit_output = graph.output[0].name
    graph.node.append(helper.make_node("Sigmoid", [logit_output], ["pd"], name="probability_of_default"))
    del graph.output[:]
    graph.output.append(helper.make_tensor_value_info("pd", TensorProto.FLOAT, [None, 1]))
    graph.name = "scengrid_pd"
    model.doc_string = "scengrid PD model: one-year probability of default given a scenario, a rating and a maturity"
    for key, value in {"features": ",".join(FEATURES), "variant": variant, "rows": str(rows), "seed": str(seed),
                       "ground_truth": "scengrid_cli.training.ground_truth"}.items():
        model.metadata_props.add(key=key, value=value)
    return model.SerializeToString()


def _errors(predicted: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    absolute = np.abs(predicted - truth)
    relative = absolute / truth
    return {
        "pd_abs_error_mean": float(absolute.mean()),
        "pd_abs_error_max": float(absolute.max()),
        "pd_rel_error_median": float(np.median(relative)),
        "pd_rel_error_p95": float(np.quantile(relative, 0.95)),
    }


def train(variant: str = "default", out_dir: Path = DEFAULT_MODEL_DIR, seed: int = SEED, name: str | None = None) -> TrainedModel:
    """Train, export and write the model, its checksum and its card; deterministic for a seed."""
    from threadpoolctl import threadpool_limits

    spec = VARIANTS[variant]
    features, target = ground_truth.training_sample(spec["rows"], seed)
    started = time.perf_counter()
    with threadpool_limits(limits=1):  # one BLAS thread: the same weights on every machine
        estimator = _estimator(spec, seed).fit(features, target)
    fit_s = time.perf_counter() - started
    body = _to_onnx(estimator, variant, spec["rows"], seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / (name or model_file_name(variant))
    path.write_bytes(body)
    sha = write_checksum(path)
    holdout, _ = ground_truth.training_sample(HOLDOUT_ROWS, seed + 1)
    card = {
        "variant": variant,
        "estimator": type(estimator).__name__ if spec["kind"] == "forest" else f"StandardScaler+MLP{spec['hidden']}",
        "features": list(FEATURES),
        "rows": spec["rows"],
        "seed": seed,
        "fit_seconds": round(fit_s, 2),
        "size_bytes": len(body),
        "sha256": sha,
        "holdout": _errors(sklearn_pd(estimator, holdout), ground_truth.true_pd(holdout)),
    }
    path.with_suffix(".json").write_text(json.dumps(card, indent=2) + "\n")
    return TrainedModel(path, sha, estimator, card)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Train the PD model on the synthetic ground truth and export it to ONNX.")
    parser.add_argument("--out", type=Path, default=DEFAULT_MODEL_DIR, help="output folder (default %(default)s)")
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--large", action="store_true", help="the >= 100 MB random forest, for cold-start measurements")
    size.add_argument("--small", action="store_true", help="a small MLP trained in seconds (tests)")
    parser.add_argument("--seed", type=int, default=SEED, help="seed of the sample and the fit (default %(default)s)")
    parser.add_argument("--name", help="file name (default pd.onnx, pd-large.onnx or pd-small.onnx)")
    args = parser.parse_args(argv)
    try:
        import onnx  # noqa: F401
        import skl2onnx  # noqa: F401
        import sklearn  # noqa: F401
    except ImportError as exc:
        print(f"training needs the dev dependencies ({exc.name} is missing): uv sync --group dev", file=sys.stderr)
        return 2
    trained = train("large" if args.large else "small" if args.small else "default", args.out, args.seed, args.name)
    print(json.dumps(trained.card), flush=True)
    print(f"wrote {trained.path} ({trained.card['size_bytes'] / 1e6:.1f} MB, sha256 {trained.sha256})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
