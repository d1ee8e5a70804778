"""The S3 key layout of a run, in one place. Keys are deterministic: a re-run overwrites."""

from __future__ import annotations


def run_prefix(run_id: str) -> str:
    return f"runs/{run_id}/"


def manifest_key(run_id: str) -> str:
    return f"{run_prefix(run_id)}manifest.json"


def worker_groups_key(run_id: str) -> str:
    """The JSON list the state machine's Map reads: one item per Batch array job."""
    return f"{run_prefix(run_id)}worker-groups.json"


def shard_key(run_id: str, shard_id: str) -> str:
    """A shard's output: one file of the run's P&L dataset (scengrid.pnl_dataset)."""
    return f"{pnl_dataset_prefix(run_id)}{shard_id}.parquet"


def results_prefix(run_id: str) -> str:
    return f"{run_prefix(run_id)}results/"


def summary_key(run_id: str) -> str:
    return f"{results_prefix(run_id)}summary.json"


def pnl_dataset_prefix(run_id: str) -> str:
    """The run's P&L dataset, one file per shard: this prefix holds Parquet files and nothing
    else, because the Athena table ``pnl`` reads every object under it (infra/template.yaml,
    PnlTable)."""
    return f"{run_prefix(run_id)}pnl/"


def report_key(run_id: str) -> str:
    return f"{results_prefix(run_id)}report.html"


def histogram_key(run_id: str) -> str:
    return f"{results_prefix(run_id)}pnl-histogram.png"


def result_name(run_id: str, key: str) -> str:
    """Where a result object goes in the run's local folder (``scengrid results``, the demo's
    ``./runs/<id>/``): ``summary.json``, ``report.html``, … and ``pnl/<file>.parquet``."""
    results = results_prefix(run_id)
    return key[len(results) :] if key.startswith(results) else key[len(run_prefix(run_id)) :]


def s3_uri(bucket: str, key: str) -> str:
    return f"s3://{bucket}/{key}"


def pd_model_key() -> str:
    """The PD model the inference function serves (its SHA-256 in the object's metadata)."""
    return "models/pd.onnx"
