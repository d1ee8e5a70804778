"""``scengrid plan``: predict a run's wall time and cost on AWS before submitting it."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from scengrid.errors import Conflict, InvalidInput
from scengrid.plan_parameters import PlanParameters
from scengrid_cli.planning.plan import RunPlan, plan_run

EXAMPLES = """examples:
  scengrid plan spec.yaml                                   # the spec's size, calibrated here
  scengrid plan spec.yaml --scenarios 1000000 10000000 100000000
  scengrid plan spec.yaml --max-cost 5 --submit             # submit only if the p90 cost is under $5
  scengrid plan spec.yaml --param fargate_spot_discount=0.6 --seconds-per-scenario 0.0002
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "plan",
        help="predict wall time, cost, tasks and subnet sizing of a run on AWS",
        description="Simulate the run on AWS Batch/Fargate (Spot start latencies and reclaims, Batch limits) "
        "and price it with dated list prices; compare with the seed layout (500 scenarios per shard, "
        "one on-demand task per shard).",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("spec", type=Path, help="RunSpec file (YAML or JSON)")
    parser.add_argument("--target", choices=["aws"], default="aws", help="where the run would go (default aws)")
    parser.add_argument("--scenarios", type=int, nargs="+", help="plan these sizes instead of the spec's")
    parser.add_argument("--seconds-per-scenario", type=float, help="model cost per scenario on one vCPU (default: measured here)")
    parser.add_argument("--param", action="append", default=[], metavar="NAME=VALUE", help="override a planning parameter")
    parser.add_argument("--max-cost", type=float, help="refuse (exit 3) when the p90 cost is above this many USD")
    parser.add_argument("--submit", action="store_true", help="submit the spec through the API when within --max-cost")
    parser.add_argument("--json", action="store_true", help="print the plans as JSON")
    parser.set_defaults(func=run)


def parameters(overrides: list[str]) -> PlanParameters:
    values = {}
    for item in overrides:
        name, sep, value = item.partition("=")
        if not sep or name not in PlanParameters.model_fields:
            raise InvalidInput("--param", f"{item!r}: give NAME=VALUE with NAME one of {', '.join(PlanParameters.model_fields)}")
        values[name] = value
    try:
        return PlanParameters.model_validate(values)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise InvalidInput(f"--param {first['loc'][0]}", first["msg"]) from exc


def run(args: argparse.Namespace) -> int:
    from scengrid import sizing
    from scengrid_cli.commands.runs import load_spec
    from scengrid.models import load_model
    from scengrid.spec import RunSpec

    spec_data = load_spec(args.spec)
    spec = RunSpec.model_validate(spec_data)
    params = parameters(args.param)
    own = spec.scenarios.count
    sizes = args.scenarios or [own]
    if args.submit and own not in sizes:
        raise InvalidInput("--submit", f"submits the spec's own {own:,} scenarios: add {own} to --scenarios or drop it")
    per_scenario = args.seconds_per_scenario or sizing.calibrate(load_model(spec.model.name, spec.model.params), spec.scenarios)
    workers = spec.workers if isinstance(spec.workers, int) else None
    shard_size = spec.shard_size if isinstance(spec.shard_size, int) else None
    plans = []
    for n in sizes:
        chosen = sizing.size_aws(n, per_scenario, workers, params, shard_size)
        plans.append(plan_run(n, chosen.shard_size, chosen.workers, per_scenario, params, chosen.reasons))
    if args.json:
        sys.stdout.write(json.dumps([p.model_dump() for p in plans]) + "\n")
    else:
        _print(plans)
    if args.max_cost is not None:
        worst = max(p.run.cost_usd_p90 for p in plans)
        if worst > args.max_cost:
            raise Conflict(f"predicted p90 cost ${worst:,.2f} is above --max-cost ${args.max_cost:,.2f}; nothing was submitted")
    if args.submit:
        from scengrid_cli.client import ApiClient

        accepted = ApiClient.from_environment().submit(planned_spec(spec_data, plans[sizes.index(own)]))
        Console(stderr=True).print(f"submitted run {accepted['run_id']} with the planned layout and cost")
    return 0


def planned_spec(spec_data: dict, plan: RunPlan) -> dict:
    """The spec as planned: the layout the plan priced (so that the run is the one planned) and
    the predicted cost, which the run's summary keeps."""
    estimate = {
        "target": "aws", "cost_usd_mean": plan.run.cost_usd_mean, "cost_usd_p90": plan.run.cost_usd_p90,
        "wall_s_mean": round(plan.run.wall_s_mean, 1), "wall_s_p90": round(plan.run.wall_s_p90, 1), "prices_as_of": plan.prices_as_of,
    }
    return {**spec_data, "shard_size": plan.run.shard_size, "workers": plan.run.tasks, "plan": estimate}


def _print(plans: list[RunPlan]) -> None:
    console = Console(width=None if sys.stdout.isatty() else 160)
    table = Table(title=f"plan on AWS (prices {plans[0].prices_as_of}; {plans[0].seconds_per_scenario:.3g} s/scenario/vCPU)")
    for column in ("scenarios", "layout", "shards", "tasks", "array jobs", "wall mean / p90", "cost mean / p90", "Spot reclaims", "re-work"):
        table.add_column(column, justify="right")
    for plan in plans:
        for layout in (plan.run, plan.seed):
            table.add_row(
                f"{plan.scenarios:,}", layout.name, f"{layout.shards:,}", f"{layout.tasks:,}", str(layout.array_jobs),
                f"{layout.wall_s_mean:,.0f} / {layout.wall_s_p90:,.0f} s", f"{_usd(layout.cost_usd_mean)} / {_usd(layout.cost_usd_p90)}",
                f"{layout.interruptions_mean:.1f}", f"{layout.rework_task_hours_mean:.2f} task-h",
            )
    console.print(table)
    for plan in plans:
        console.print(f"{plan.scenarios:,} scenarios: subnets: {plan.subnets.advice}")
        for reason in plan.sizing:
            console.print(f"  sizing: {reason}")


def _usd(value: float) -> str:
    """Cents, or four decimals under a cent (a small run costs a fraction of one)."""
    return f"${value:,.2f}" if value >= 0.01 else f"${value:.4f}"
