"""``scengrid demo``: one run of the whole pipeline on the embedded emulator."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from scengrid.errors import InvalidInput
from scengrid.spec import DEFAULT_MODEL, DEFAULT_MODEL_PARAMS, GeneratedScenarios, ModelRef, RunSpec
from scengrid.status import RunRecord, Status

DEFAULT_SCENARIOS = 100_000

EXAMPLES = """examples:
  scengrid demo                                  # 100,000 scenarios, the sample portfolio of 200 positions
  scengrid demo --scenarios 1000000 --workers 4  # a million, four local workers
  scengrid demo --scenarios 20000 --shard-size 5000 --json | tail -1 | jq .var_99
  scengrid demo --scenarios 50000 --workers 5 --chaos      # the same run under injected faults
  scengrid demo --model linear                   # the linear sensitivity model instead
  scengrid demo --containers                     # every Batch job as a container of its image (make images)
  scengrid demo --model acme-swaps --params '{"notional": 5e6}'     # your own model (docs/models.md)
  scengrid demo --model acme-swaps --containers --model-image model-acme-swaps-0.1.0   # in its images (scengrid image build)
"""


def _count(what: str, auto: bool = True):  # noqa: ANN202
    """An argparse type: a positive number of ``what`` (or 'auto' where it may be)."""
    hint = " or 'auto'" if auto else ""

    def parse(value: str) -> int | str:
        if auto and value == "auto":
            return value
        try:
            number = int(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"give a positive number of {what}{hint}") from None
        if number <= 0:
            raise argparse.ArgumentTypeError(f"the number of {what} must be positive{hint}")
        return number

    return parse


_shard_size = _count("scenarios per shard")
_workers = _count("worker tasks")
_scenarios = _count("scenarios", auto=False)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="run the whole pipeline locally on the embedded AWS emulator",
        description="Start the embedded emulator, provision infra/template.yaml into it, run one "
        "scenario run through the state machine with local worker processes, and print the risk summary.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--scenarios", type=_scenarios, default=DEFAULT_SCENARIOS, help="number of scenarios (default %(default)s)")
    parser.add_argument("--shard-size", type=_shard_size, default="auto", help="scenarios per shard, or auto (default)")
    parser.add_argument("--workers", type=_workers, default="auto", help="worker tasks, or auto (default)")
    parser.add_argument("--seed", type=int, default=42, help="scenario generator seed (default %(default)s)")
    parser.add_argument("--model", default=DEFAULT_MODEL, help="registered model name (default %(default)s)")
    parser.add_argument("--params", type=_params, help="the model's params as JSON (or @FILE); default: the model's own")
    parser.add_argument("--out", type=Path, default=Path("runs"), help="where results are copied (default ./runs)")
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds to wait for the run (default %(default)s)")
    parser.add_argument("--json", action="store_true", help="end with one JSON line on stdout")
    parser.add_argument(
        "--chaos",
        action="store_true",
        help="inject faults: SIGTERM/SIGKILL ~20%% of workers, throttle ~5%% of S3/DynamoDB calls, "
        "deliver ~5%% of events twice; the summary says what was injected and recovered",
    )
    parser.add_argument("--chaos-seed", type=int, default=1, help="seed of the injected faults (default %(default)s)")
    parser.add_argument(
        "--containers",
        action="store_true",
        help="run every Batch job as a container of its image (podman or docker; `make images` builds them), "
        "sized by its job definition, instead of as a local process",
    )
    parser.add_argument(
        "--model-image", metavar="TAG",
        help="with --containers: run the Batch jobs in the images with a model package installed, "
        "scengrid-SERVICE:TAG (TAG is model-<name>-<version>, as `scengrid image build PATH` prints it)",
    )
    parser.add_argument(
        "--credit-overlay", choices=["lambda", "inline"],
        help="add the bonds' expected credit loss (pnl_default) with PDs from the inference function (lambda) "
        "or from the PD model loaded in the workers (inline); trains build/models/pd.onnx first if it is missing",
    )
    parser.add_argument("--lgd", type=_share, default=0.6, help="loss given default of the credit overlay (default %(default)s)")
    parser.set_defaults(func=run)


def _params(value: str) -> dict:
    from scengrid_cli.commands.model import _params as parse

    return parse(value)


def _share(value: str) -> float:
    try:
        share = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError("give a share above 0 and at most 1, e.g. 0.6") from None
    if not 0 < share <= 1:
        raise argparse.ArgumentTypeError("the loss given default is a share above 0 and at most 1")
    return share


def run(args: argparse.Namespace) -> int:
    from scengrid_cli.local.demo import run_on_stack
    from scengrid_cli.local.stack import LocalStack

    err = Console(stderr=True)
    if args.model_image and not args.containers:
        raise InvalidInput("--model-image", "goes with --containers (without it, jobs run the model installed here)")
    if args.model_image and not args.model_image.startswith("model-"):
        raise InvalidInput("--model-image", f"{args.model_image!r}: give the tag `scengrid image build` printed, model-<name>-<version>")
    params = dict(DEFAULT_MODEL_PARAMS) if args.model == DEFAULT_MODEL else {}
    if args.params is not None:
        params = dict(args.params)
    if args.credit_overlay:
        params["credit_overlay"] = {"lgd": args.lgd, "mode": args.credit_overlay}
    spec = RunSpec(
        model=ModelRef(name=args.model, params=params),
        scenarios=GeneratedScenarios(count=args.scenarios, seed=args.seed),
        shard_size=args.shard_size,
        workers=args.workers,
    )
    err.print(
        f"[bold]scengrid demo[/]: {spec.scenarios.count:,} scenarios, shard size {spec.shard_size}, "
        f"workers {spec.workers}, model [cyan]{spec.model.name}[/]"
    )
    pd_model = None
    if args.credit_overlay:
        from scengrid_cli.local.inference import demo_pd_model

        with err.status("the PD model: build/models/pd.onnx, trained first if it is missing (make model)…"):
            pd_model = demo_pd_model()
    with err.status("starting the embedded AWS emulator and provisioning infra/template.yaml…"):
        stack = LocalStack(
            chaos_seed=args.chaos_seed if args.chaos else None, pd_model=pd_model, containers=args.containers,
            model_image_tag=args.model_image or "",
        ).__enter__()
    if args.chaos:
        from scengrid_cli.local.chaos import WorkerKiller
        from scengrid.sizing import local_workers

        assert stack.runner is not None
        stack.runner.interrupter = WorkerKiller(args.chaos_seed, spec.workers if isinstance(spec.workers, int) else local_workers())
    try:
        err.print(f"stack ready in {stack.startup_s:.1f}s (emulator at {stack.emulator.url}; job logs in {stack.work_dir})")
        progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[state]}"),
            TimeElapsedColumn(), console=err, transient=False,
        )
        with progress:
            task = progress.add_task("shards", total=spec.shard_count(), state="PENDING (sizing)")

            def show(record: RunRecord) -> None:
                failed = f", {record.shards_failed} failed" if record.shards_failed else ""
                progress.update(task, total=record.shards_total or None, completed=record.shards_done, state=f"{record.status.value}{failed}")

            outcome = run_on_stack(stack, spec, args.out, args.timeout, show)
    finally:
        stack.__exit__(None, None, None)
    if outcome.faults is not None:
        err.print(f"chaos: injected {outcome.faults['injected']}; recovered {outcome.faults['recovered']}")
    for reason in (outcome.summary.get("sizing") or {}).get("reasons", []):
        err.print(f"sizing: {reason}")
    if outcome.record.status is Status.COMPLETE:
        _print_summary(err if args.json else Console(), outcome.as_json())
    else:
        err.print(f"[red]run {outcome.run_id} {outcome.record.status.value}[/]: {outcome.record.reason or outcome.execution_status}")
        err.print(f"job logs: {stack.work_dir / 'jobs'}")
    if args.json:
        sys.stdout.write(json.dumps(outcome.as_json()) + "\n")
    return 0 if outcome.record.status is Status.COMPLETE else 1


def _print_summary(console: Console, result: dict) -> None:
    table = Table(title=f"run {result['run_id']}: {result['status']}", show_header=False)
    table.add_column(style="bold")
    table.add_column(justify="right")
    for label, key in (("scenarios", "scenarios"), ("shards", "shards")):
        table.add_row(label, f"{result[key]:,}")
    for label, key in (("VaR 95%", "var_95"), ("VaR 99%", "var_99"), ("ES 97.5%", "es_975"), ("mean P&L", "mean"), ("std P&L", "std")):
        table.add_row(label, f"{result[key]:,.2f}")
    if result.get("model_version"):
        table.add_row("PD model", result["model_version"][:12])
    table.add_row("wall time", f"{result['wall_s']:.1f} s")
    table.add_row("results", str(result["results_dir"]))
    console.print(table)
