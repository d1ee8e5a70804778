"""``scengrid plan``: predict a run's wall time and cost on AWS before submitting it, and
whether the runs planned to overlap fit in what they share (Fargate vCPU quotas, the compute
environments' MaxVcpus, the worker subnets' addresses)."""

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
from scengrid_cli.planning.capacity import OverlapCheck, PlannedRun, SharedCapacity, assumed_capacity, check_overlap
from scengrid_cli.planning.plan import RunPlan, plan_run

EXAMPLES = """examples:
  scengrid plan spec.yaml                                   # the spec's size, calibrated here
  scengrid plan spec.yaml --scenarios 1000000 10000000 100000000
  scengrid plan spec.yaml --max-cost 5 --submit             # submit only if the p90 cost is under $5
  scengrid plan spec.yaml --param fargate_spot_discount=0.6 --seconds-per-scenario 0.0002
  scengrid plan eod.yaml stress.yaml --concurrent 3         # 3 copies of each run, all at once: do they fit?
  scengrid plan spec.yaml --stack risk-prod --region eu-west-1
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "plan",
        help="predict wall time, cost, tasks and subnet sizing of a run on AWS, and whether overlapping runs fit",
        description="Simulate the run on AWS Batch/Fargate (Spot start latencies and reclaims, Batch limits) "
        "and price it with dated list prices; compare with the seed layout (500 scenarios per shard, "
        "one on-demand task per shard). Then check what runs at the same time share: the account's Fargate "
        "Spot and on-demand vCPU quotas, the stack's compute environments (MaxVcpus) and its worker subnets' "
        "free addresses, and warn when the runs planned to overlap need more.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("spec", type=Path, nargs="+", help="RunSpec file (YAML or JSON); several are planned to run at the same time")
    parser.add_argument("--target", choices=["aws"], default="aws", help="where the run would go (default aws)")
    parser.add_argument("--scenarios", type=int, nargs="+", help="plan these sizes instead of the spec's (one spec only)")
    parser.add_argument("--seconds-per-scenario", type=float, help="model cost per scenario on one vCPU (default: measured here)")
    parser.add_argument("--param", action="append", default=[], metavar="NAME=VALUE", help="override a planning parameter")
    parser.add_argument("--concurrent", type=int, default=1, metavar="N",
                        help="plan N copies of each run at the same time (default 1): capacity and --max-cost count them all")
    parser.add_argument("--stack", default="scengrid", help="the deployed stack the runs share (default scengrid, the deploy's ENV_NAME)")
    parser.add_argument("--region", help="the stack's region (default SCENGRID_REGION, else the AWS profile's, else us-east-1)")
    parser.add_argument("--offline", action="store_true",
                        help="read nothing from AWS: check against AWS's default quotas and the template's defaults")
    parser.add_argument("--max-cost", type=float,
                        help="refuse (exit 3) when the p90 cost of the runs planned at once is above this many USD")
    parser.add_argument("--submit", action="store_true", help="submit the spec(s) through the API when within --max-cost")
    parser.add_argument("--json", action="store_true", help="print the plans and the shared capacity as JSON")
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
    from scengrid_cli.commands.runs import load_spec

    _check_options(args)
    params = parameters(args.param)
    specs = [(path, load_spec(path)) for path in args.spec]  # bad input fails before anything is read or measured
    capacity = shared_capacity(args.stack, args.region, args.offline)
    params = with_stack_task_shape(params, capacity, _overridden(args.param))
    planned = [_plan_spec(path, data, args.scenarios, args.seconds_per_scenario, params, args.submit) for path, data in specs]
    plans = [plan for _, _, spec_plans in planned for plan in spec_plans]
    overlaps = overlap_checks(plans, len(args.spec), args.concurrent, params.worker_vcpus, capacity)
    if args.json:
        document = {"plans": [p.model_dump() for p in plans], "concurrent": args.concurrent,
                    "shared_capacity": capacity.model_dump(), "overlaps": [o.model_dump() for o in overlaps]}
        sys.stdout.write(json.dumps(document) + "\n")
        for warning in dict.fromkeys(w for o in overlaps for w in o.warnings):
            sys.stderr.write(f"scengrid plan: warning: {warning}\n")
    else:
        _print(plans)
        _print_capacity(capacity, overlaps, params.worker_vcpus, params.worker_memory_gb)
    if args.max_cost is not None:
        worst = max(o.cost_usd_p90 for o in overlaps)
        if worst > args.max_cost:
            what = "" if len(overlaps[0].runs) == 1 and args.concurrent == 1 else " of the runs planned at once"
            raise Conflict(f"predicted p90 cost ${worst:,.2f}{what} is above --max-cost ${args.max_cost:,.2f}; nothing was submitted")
    if args.submit:
        from scengrid_cli.client import ApiClient

        api = ApiClient.from_environment()
        for spec_data, own, spec_plans in planned:
            accepted = api.submit(planned_spec(spec_data, next(p for p in spec_plans if p.scenarios == own)))
            Console(stderr=True).print(f"submitted run {accepted['run_id']} with the planned layout and cost")
    return 0


def _check_options(args: argparse.Namespace) -> None:
    if args.scenarios and len(args.spec) > 1:
        raise InvalidInput("--scenarios", "plans one spec at several sizes; with several specs, each is planned at its own size")
    if args.concurrent < 1:
        raise InvalidInput("--concurrent", f"{args.concurrent}: give the number of copies of each run at once, 1 or more")
    if args.submit and args.concurrent > 1:
        raise InvalidInput("--submit", "submits each spec once; --concurrent only plans copies: drop one of them")


def _overridden(overrides: list[str]) -> set[str]:
    return {item.partition("=")[0] for item in overrides}


def with_stack_task_shape(params: PlanParameters, capacity: SharedCapacity, overridden: set[str]) -> PlanParameters:
    """The worker task the stack runs (its WorkerVcpus and WorkerMemoryMiB), where ``--param`` does not say otherwise."""
    shape = {"worker_vcpus": capacity.worker_vcpus, "worker_memory_gb": capacity.worker_memory_gb}
    return params.model_copy(update={k: v for k, v in shape.items() if v and k not in overridden})


def _plan_spec(path: Path, spec_data: dict, sizes: list[int] | None, per_scenario: float | None, params: PlanParameters,
               submit: bool) -> tuple[dict, int, list[RunPlan]]:
    """The plans of one spec (at its own size, or at each of ``sizes``): its data, its own
    size and the plans."""
    from scengrid import sizing
    from scengrid.models import load_model
    from scengrid.spec import RunSpec

    spec = RunSpec.model_validate(spec_data)
    own = spec.scenarios.count
    sizes = sizes or [own]
    if submit and own not in sizes:
        raise InvalidInput("--submit", f"submits the spec's own {own:,} scenarios: add {own} to --scenarios or drop it")
    per_scenario = per_scenario or sizing.calibrate(load_model(spec.model.name, spec.model.params), spec.scenarios)
    workers = spec.workers if isinstance(spec.workers, int) else None
    shard_size = spec.shard_size if isinstance(spec.shard_size, int) else None
    plans = []
    for n in sizes:
        chosen = sizing.size_aws(n, per_scenario, workers, params, shard_size)
        plan = plan_run(n, chosen.shard_size, chosen.workers, per_scenario, params, chosen.reasons)
        plans.append(plan.model_copy(update={"spec": path.name}))
    return spec_data, own, plans


def shared_capacity(stack: str, region: str | None, offline: bool) -> SharedCapacity:
    """What the runs share, read from the account in ``region`` (see ``resolve_region``), or the
    defaults when ``offline``."""
    region = resolve_region(region)
    if offline:
        return assumed_capacity(region, stack, ["--offline: nothing was read from AWS; the figures are the defaults"])
    from scengrid_cli.planning.account import read_shared_capacity

    return read_shared_capacity(stack)


def resolve_region(region: str | None) -> str:
    """``--region``, else SCENGRID_REGION, else the AWS profile's region (AWS_DEFAULT_REGION or
    the config file), else the settings' default; the AWS clients of this process use it."""
    from scengrid.aws import session
    from scengrid.settings import get_settings, use_settings

    settings = get_settings()
    chosen = region or (settings.region if "region" in settings.model_fields_set else None) or session().region_name or settings.region
    if chosen != settings.region:
        use_settings(settings.model_copy(update={"region": chosen}))
    return chosen


def overlap_checks(plans: list[RunPlan], specs: int, copies: int, worker_vcpus: float,
                   capacity: SharedCapacity) -> list[OverlapCheck]:
    """Several specs run at once: one check of all of them. One spec at several sizes: one
    check per size (the sizes are alternatives). Each counts ``copies`` of every run."""
    def planned(plan: RunPlan) -> PlannedRun:
        label = f"{plan.spec} ({plan.scenarios:,} scenarios)"
        return PlannedRun(label=label, workers=plan.run.peak_tasks, worker_vcpus=worker_vcpus, copies=copies,
                          cost_usd_p90=plan.run.cost_usd_p90)

    if specs > 1:
        return [check_overlap([planned(p) for p in plans], capacity)]
    return [check_overlap([planned(p)], capacity) for p in plans]


def planned_spec(spec_data: dict, plan: RunPlan) -> dict:
    """The spec as planned: the layout the plan priced (so that the run is the one planned) and
    the predicted cost, which the run's summary keeps."""
    estimate = {
        "target": "aws", "cost_usd_mean": plan.run.cost_usd_mean, "cost_usd_p90": plan.run.cost_usd_p90,
        "wall_s_mean": round(plan.run.wall_s_mean, 1), "wall_s_p90": round(plan.run.wall_s_p90, 1), "prices_as_of": plan.prices_as_of,
    }
    return {**spec_data, "shard_size": plan.run.shard_size, "workers": plan.run.tasks, "plan": estimate}


def _console() -> Console:
    return Console(width=None if sys.stdout.isatty() else 160)


def _print(plans: list[RunPlan]) -> None:
    console = _console()
    several = len({p.spec for p in plans}) > 1
    speeds = {p.seconds_per_scenario for p in plans}
    speed = f"; {plans[0].seconds_per_scenario:.3g} s/scenario/vCPU" if len(speeds) == 1 else ""
    table = Table(title=f"plan on AWS (prices {plans[0].prices_as_of}{speed})")
    for column in (*(["spec"] if several else []), "scenarios", "layout", "shards", "tasks", "array jobs", "wall mean / p90",
                   "cost mean / p90", "Spot reclaims", "re-work"):
        table.add_column(column, justify="left" if column == "spec" else "right")
    for plan in plans:
        for layout in (plan.run, plan.seed):
            table.add_row(
                *([plan.spec] if several else []),
                f"{plan.scenarios:,}", layout.name, f"{layout.shards:,}", f"{layout.tasks:,}", str(layout.array_jobs),
                f"{layout.wall_s_mean:,.0f} / {layout.wall_s_p90:,.0f} s", f"{_usd(layout.cost_usd_mean)} / {_usd(layout.cost_usd_p90)}",
                f"{layout.interruptions_mean:.1f}", f"{layout.rework_task_hours_mean:.2f} task-h",
            )
    console.print(table)
    for plan in plans:
        name = f"{plan.spec}, " if several else ""
        console.print(f"{name}{plan.scenarios:,} scenarios: subnets: {plan.subnets.advice}")
        for reason in plan.sizing:
            console.print(f"  sizing: {reason}")


QUOTA_FROM = {"applied": "the account's applied quota (Service Quotas)", "aws default": "AWS's default (Service Quotas)",
              "assumed": "AWS's default, assumed (not read)"}


def _print_capacity(capacity: SharedCapacity, overlaps: list[OverlapCheck], worker_vcpus: float, worker_memory_gb: float) -> None:
    """What the runs share, what the runs planned at once take of it at their peak, and the warnings."""
    console = _console()
    where = f"account {capacity.account}, " if capacity.account else ""
    table = Table(title=f"shared by concurrent runs ({where}{capacity.region}, stack {capacity.stack})")
    for column in ("limit", "vCPUs or addresses", "from"):
        table.add_column(column, justify="right" if column == "vCPUs or addresses" else "left")
    for label, quota in (("Fargate Spot vCPUs", capacity.spot_quota), ("Fargate On-Demand vCPUs", capacity.on_demand_quota)):
        table.add_row(f"{label} (quota {quota.code})", f"{quota.vcpus:,.0f}", QUOTA_FROM[quota.source])
    spot = sum(e.max_vcpus for e in capacity.environments if e.spot)
    on_demand = sum(e.max_vcpus for e in capacity.environments if not e.spot)
    table.add_row("compute environments' MaxVcpus", f"{spot:,} Spot + {on_demand:,} on-demand", capacity.environments_from)
    table.add_row("worker subnets' free addresses", f"{capacity.free_addresses:,} in {len(capacity.subnets)} subnets",
                  capacity.subnets_from)
    console.print(table)
    source = "the stack's" if capacity.worker_vcpus == worker_vcpus else "the plan's"
    console.print(f"worker task: {worker_vcpus:g} vCPUs, {worker_memory_gb:g} GB ({source}); "
                  f"usable at once: {capacity.spot_vcpus:,.0f} vCPUs on Spot + {capacity.on_demand_vcpus:,.0f} on-demand")
    for note in capacity.notes:
        console.print(f"  note: {note}", style="dim", markup=False, highlight=False)
    peaks = Table(title="the runs planned at once, at their peak")
    for column in ("runs", "workers", "vCPUs", "of usable (Spot)", "addresses", "of free", "p90 cost", "fits"):
        peaks.add_column(column, justify="left" if column == "runs" else "right")
    for overlap in overlaps:
        runs = "; ".join(f"{r.label}{f' x{r.copies}' if r.copies > 1 else ''}" for r in overlap.runs)
        peaks.add_row(
            runs, f"{overlap.peak_tasks:,}", f"{overlap.peak_vcpus:,.0f}", f"{overlap.usable_vcpus:,.0f} ({overlap.spot_vcpus:,.0f})",
            f"{overlap.peak_tasks:,}", f"{overlap.free_addresses:,}", _usd(overlap.cost_usd_p90), "yes" if overlap.fits else "NO",
        )
    console.print(peaks)
    for warning in dict.fromkeys(w for o in overlaps for w in o.warnings):
        console.print(f"warning: {warning}", style="yellow", markup=False, highlight=False)


def _usd(value: float) -> str:
    """Cents, or four decimals under a cent (a small run costs a fraction of one)."""
    return f"${value:,.2f}" if value >= 0.01 else f"${value:.4f}"
