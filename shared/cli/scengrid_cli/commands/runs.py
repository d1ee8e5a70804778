"""Commands on runs, through the API (``scengrid local up``, or a deployed stack):
submit, status, results, runs, retry, cancel."""

from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import requests
import yaml
from pydantic import ValidationError
from rich.console import Console
from rich.live import Live
from rich.table import Table

from scengrid_cli.client import ApiClient
from scengrid import layout, pnl_dataset
from scengrid.errors import InvalidInput, ScengridError
from scengrid.spec import RunSpec

FINAL = {"COMPLETE", "FAILED", "CANCELLED"}
POLL_S = 0.5


def _command(subparsers: argparse._SubParsersAction, name: str, help_: str, example: str) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        name, help=help_, description=help_[0].upper() + help_[1:] + ".", epilog=f"examples:\n  {example}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--json", action="store_true", help="print the API's JSON instead of a table")
    return parser


def register(subparsers: argparse._SubParsersAction) -> None:
    p = _command(subparsers, "submit", "submit a run described by a YAML or JSON RunSpec file", "scengrid submit spec.yaml --watch")
    p.add_argument("spec", type=Path, help="RunSpec file (YAML or JSON)")
    p.add_argument("--idempotency-key", help="a repeat with the same key returns the same run")
    p.add_argument("--watch", action="store_true", help="follow the run until it ends")
    p.set_defaults(func=submit)

    p = _command(subparsers, "status", "show a run's status, progress, throughput and ETA", "scengrid status RUN_ID --watch")
    p.add_argument("run_id")
    p.add_argument("--watch", action="store_true", help="follow the run with a live progress bar until it ends")
    p.set_defaults(func=status)

    p = _command(
        subparsers,
        "results",
        "show a COMPLETE run's risk summary and download its results",
        "scengrid results RUN_ID --out runs/\n  scengrid results RUN_ID --merge\n"
        "  scengrid results RUN_ID --sql \"select scenario_id, pnl from pnl order by pnl limit 5\"",
    )
    p.add_argument("run_id")
    p.add_argument(
        "--out", type=Path, default=Path("runs"),
        help="download the summary, the report and the P&L dataset (pnl/, one Parquet file per shard, each ordered by "
        "P&L, the worst last) to OUT/RUN_ID (default ./runs)",
    )
    p.add_argument(
        "--merge", action="store_true",
        help="also write OUT/RUN_ID/pnl.parquet: the whole P&L as one file in scenario order (written a shard at a time)",
    )
    p.add_argument("--open", action="store_true", help="open report.html in the browser")
    p.add_argument(
        "--sql",
        help="run a DuckDB query over the results; the tables are `pnl` (the dataset: one row per scenario, in no "
        "particular order) and `summary`, "
        "e.g. \"select * from pnl order by pnl limit 5\"",
    )
    p.set_defaults(func=results)

    p = _command(subparsers, "runs", "list runs, a page at a time", "scengrid runs --limit 50")
    p.add_argument("--limit", type=int, default=20, help="runs per page (1-100, default %(default)s)")
    p.add_argument("--next-token", help="the token a previous page printed")
    p.set_defaults(func=list_runs)

    p = _command(subparsers, "retry", "re-run only the FAILED or missing shards of a FAILED run, then collate it", "scengrid retry RUN_ID --watch")
    p.add_argument("run_id")
    p.add_argument("--watch", action="store_true", help="follow the run until it ends")
    p.set_defaults(func=retry)

    p = _command(subparsers, "cancel", "cancel a run: stop its execution and drop its remaining shards", "scengrid cancel RUN_ID")
    p.add_argument("run_id")
    p.set_defaults(func=cancel)


def load_spec(path: Path) -> dict[str, Any]:
    """Read and validate a RunSpec file; errors name the file and the field."""
    if not path.is_file():
        raise InvalidInput(str(path), "no such file")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise InvalidInput(str(path), f"not valid YAML or JSON: {exc}") from exc
    try:
        return RunSpec.model_validate(data).model_dump(mode="json")
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "spec"
        raise InvalidInput(f"{path}: {field}", first["msg"]) from exc


def _emit(args: argparse.Namespace, payload: Any, table: Table | str) -> None:
    if args.json:
        sys.stdout.write(json.dumps(payload) + "\n")
    else:
        Console().print(table)


def submit(args: argparse.Namespace) -> int:
    client = ApiClient.from_environment()
    accepted = client.submit(load_spec(args.spec), args.idempotency_key)
    if not args.watch:
        _emit(args, accepted, f"run {accepted['run_id']} submitted; follow it with `scengrid status {accepted['run_id']} --watch`")
        return 0
    return _watch(client, accepted["run_id"], args)


def status(args: argparse.Namespace) -> int:
    client = ApiClient.from_environment()
    if args.watch:
        return _watch(client, args.run_id, args)
    view = client.run(args.run_id)
    _emit(args, view, _run_table(view))
    return 0


def _progress_line(view: dict[str, Any]) -> str:
    p = view["progress"]
    total = p["shards_total"] or 1
    width = 30
    filled = int(width * p["shards_done"] / total)
    rate = f"{p['scenarios_per_s']:,.0f} scen/s" if p["scenarios_per_s"] else "- scen/s"
    eta = f"ETA {p['eta_s']:.0f}s" if p["eta_s"] is not None else "ETA -"
    running = max(0, p["shards_total"] - p["shards_done"] - p["shards_failed"])
    return (
        f"{view['run_id']} [{'#' * filled}{'.' * (width - filled)}] {view['status']}  "
        f"done {p['shards_done']}/{p['shards_total']}  failed {p['shards_failed']}  running/pending {running}  {rate}  {eta}"
        + (f"  {_partial(view['partial_var_99'])}" if view.get("partial_var_99") else "")
    )


def _partial(estimate: dict[str, Any]) -> str:
    return (f"VaR99 ≈ {estimate['estimate']:,.0f} [{estimate['low']:,.0f}, {estimate['high']:,.0f}] "
            f"({estimate['confidence']:.0%}, {estimate['shards']} shards)")


def _watch(client: ApiClient, run_id: str, args: argparse.Namespace) -> int:
    console = Console(stderr=True)
    view = _wait_for_view(client, run_id)
    with Live(_progress_line(view), console=console, refresh_per_second=4) as live:
        while view["status"] not in FINAL:
            time.sleep(POLL_S)
            view = client.run(run_id)
            live.update(_progress_line(view))
    _emit(args, view, _run_table(view))
    return 0 if view["status"] == "COMPLETE" else 1


def _wait_for_view(client: ApiClient, run_id: str, timeout_s: float = 60) -> dict[str, Any]:
    """A just-submitted run appears once the tracker has seen its run-requested."""
    from scengrid_cli.client import ApiError

    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return client.run(run_id)
        except ApiError as exc:
            if exc.status != 404 or time.monotonic() > deadline:
                raise
            time.sleep(POLL_S)


def _run_table(view: dict[str, Any]) -> Table:
    table = Table(title=f"run {view['run_id']}: {view['status']}", show_header=False)
    table.add_column(style="bold")
    table.add_column(justify="right")
    p = view["progress"]
    rows = [
        ("model", view.get("model") or "-"),
        ("scenarios", f"{view['scenarios']:,}"),
        ("shards done / failed / total", f"{p['shards_done']} / {p['shards_failed']} / {p['shards_total']}"),
        ("elapsed", f"{p['elapsed_s']:.1f} s"),
        ("throughput", f"{p['scenarios_per_s']:,.0f} scenarios/s" if p["scenarios_per_s"] else "-"),
    ]
    for label, key in (("VaR 95%", "var_95"), ("VaR 99%", "var_99"), ("ES 97.5%", "es_975")):
        if view.get(key) is not None:
            rows.append((label, f"{view[key]:,.2f}"))
    if view.get("partial_var_99"):
        rows.append(("VaR 99% so far", _partial(view["partial_var_99"])))
    if view.get("reason"):
        rows.append(("reason", view["reason"][:200]))
    for label, value in rows:
        table.add_row(label, value)
    return table


def results(args: argparse.Namespace) -> int:
    client = ApiClient.from_environment()
    found = client.results(args.run_id)
    target = args.out / args.run_id
    target.mkdir(parents=True, exist_ok=True)
    files = {}
    for name, url in found["urls"].items():  # summary.json, report.html, …, pnl/000000.parquet, …
        local = target / name
        if not local.resolve().is_relative_to(target.resolve()):
            raise ScengridError(f"the API named a result file outside {target}: {name}; is SCENGRID_API_URL the scengrid API?")
        files[local] = url
    with ThreadPoolExecutor(DOWNLOADS) as pool:  # a dataset has a file per shard: fetch several at once
        list(pool.map(lambda item: _download(*item), files.items()))  # raises the first failure
    if args.merge:
        merged = target / "pnl.parquet"
        rows = pnl_dataset.merge_local(target / "pnl", merged)
        found = {**found, "merged": str(merged)}
        if not args.json:
            print(f"merged {rows:,} scenarios into {merged}", file=sys.stderr)
    if args.sql:
        return _query(args, target)
    if args.open:
        import webbrowser

        webbrowser.open((target / "report.html").resolve().as_uri())
    summary = found["summary"]
    table = Table(title=f"run {args.run_id}: results in {target}", show_header=False)
    for label, key in (("scenarios", "scenarios"), ("VaR 95%", "var_95"), ("VaR 99%", "var_99"), ("ES 97.5%", "es_975"), ("mean", "mean"), ("std", "std")):
        table.add_row(label, f"{summary[key]:,.2f}" if isinstance(summary[key], float) else f"{summary[key]:,}")
    _emit(args, {**found, "results_dir": str(target)}, table)
    return 0


DOWNLOADS = 8  # result files fetched at once


def _download(local: Path, url: str) -> None:
    """A presigned URL's object to ``local``, streamed to disk (a shard file can be large)."""
    local.parent.mkdir(parents=True, exist_ok=True)
    with requests.get(url, timeout=120, stream=True) as response:
        response.raise_for_status()
        with local.open("wb") as out:
            for block in response.iter_content(1 << 20):
                out.write(block)


def _query(args: argparse.Namespace, results_dir: Path) -> int:
    """DuckDB over the downloaded P&L dataset and summary; errors say what DuckDB objected to."""
    import duckdb

    dataset = results_dir / layout.result_name(args.run_id, layout.pnl_dataset_prefix(args.run_id))
    connection = duckdb.connect()
    connection.execute(f"create view pnl as select * from read_parquet('{dataset / '*.parquet'}')")
    connection.execute(f"create view summary as select * from read_json_auto('{results_dir / 'summary.json'}')")
    try:
        result = connection.execute(args.sql)
    except duckdb.Error as exc:
        raise InvalidInput("--sql", f"{exc}; the tables are pnl and summary") from exc
    columns = [d[0] for d in result.description]
    rows = result.fetchall()
    if args.json:
        sys.stdout.write(json.dumps({"columns": columns, "rows": rows}, default=str) + "\n")
        return 0
    table = Table(*columns)
    for row in rows:
        table.add_row(*(f"{v:,.6g}" if isinstance(v, float) else str(v) for v in row))
    Console().print(table)
    return 0


def list_runs(args: argparse.Namespace) -> int:
    page = ApiClient.from_environment().runs(args.limit, args.next_token)
    table = Table("run", "status", "scenarios", "shards", "created")
    for view in page["runs"]:
        p = view["progress"]
        table.add_row(view["run_id"], view["status"], f"{view['scenarios']:,}", f"{p['shards_done']}/{p['shards_total']}", view["created_at"] or "-")
    if page["next_token"]:
        table.caption = f"more: scengrid runs --next-token {page['next_token']}"
    _emit(args, page, table)
    return 0


def retry(args: argparse.Namespace) -> int:
    client = ApiClient.from_environment()
    accepted = client.retry(args.run_id)
    if args.watch:
        time.sleep(1.0)  # let the tracker reopen the run before following it
        return _watch(client, args.run_id, args)
    _emit(args, accepted, f"run {args.run_id}: round {accepted['round']} requested; only its FAILED or missing shards run again")
    return 0


def cancel(args: argparse.Namespace) -> int:
    accepted = ApiClient.from_environment().cancel(args.run_id)
    _emit(args, accepted, f"run {args.run_id}: cancellation requested")
    return 0
