"""``scengrid model eval`` (any registered model over a scenario file or generated scenarios,
offline, with the same kernel as the worker; ``--portfolio`` is the portfolio model's shortcut),
``scengrid model check`` (before a costly run) and ``scengrid sample-portfolio``."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import ValidationError

from scengrid.errors import InvalidInput
from scengrid.kernel import evaluate_range, results_table
from scengrid.models import load_model
from scengrid.models.portfolio import sample_portfolio
from scengrid.risk import expected_shortfall, value_at_risk
from scengrid.scenario_files import read_stress_file
from scengrid.scenario_sources import resolve_source
from scengrid.spec import FileScenarios, GeneratedScenarios, HistoricalScenarios, ScenarioSource, StressScenarios

EVAL_EXAMPLES = """examples:
  scengrid model eval --model acme-swaps --generate 100000 --seed 42 --out mc.parquet
  scengrid model eval --model acme-swaps --params '{"notional": 5e6}' --scenarios shocks.parquet --out r.parquet
  scengrid model eval --portfolio book.json --scenarios shocks.parquet --out results.parquet
  scengrid model eval --portfolio s3://bucket/book.json --scenarios stress.json --out stress.parquet
  scengrid model eval --portfolio book.json --scenarios history.parquet --bootstrap 100000 --seed 3 --out r.parquet
  scengrid model eval --portfolio book.json --generate 200000 --seed 42 --student-t 5 --out mc.parquet

Scenario files: a Parquet file with scenario_id (0..n-1) and one column per factor
(rate.USD.5, spread.BBB, equity.SPX, vol.SPX, fx.EUR, ...), a Parquet history of factor
changes (--historical, or --bootstrap N), or a JSON file of named stress scenarios. See
docs/model.md (the portfolio model) and docs/models.md (your own model)."""

CHECK_EXAMPLES = """examples:
  scengrid model check acme-swaps
  scengrid model check acme-swaps --params '{"notional": 5e6}'
  scengrid model check portfolio --params '{"portfolio": {"sample": {"positions": 50, "seed": 7}}}' --json

It checks that the model is registered (an installed package's entry point, group
scengrid.models) and accepts the params; that its factor names parse; its outputs on a few
thousand generated scenarios ('pnl' and any other columns: one real value per scenario);
no NaN or inf; determinism (the same shocks give the same bits, in any slice); and prints
the cost per scenario on one core and the planned wall time and cost of 1,000,000
scenarios on AWS. Exit status 0 when every check passes, 2 otherwise, with what to fix.
See docs/models.md."""

SAMPLE_EXAMPLES = """examples:
  scengrid sample-portfolio --positions 1000 --seed 7 --out book.json
  scengrid sample-portfolio --positions 20 | jq '.positions[0]'"""


def register(subparsers: argparse._SubParsersAction) -> None:
    model = subparsers.add_parser(
        "model", help="check a model, or evaluate it offline", description="Check a registered model before a run, or evaluate it offline."
    )
    actions = model.add_subparsers(dest="action", metavar="ACTION", required=True)
    c = actions.add_parser(
        "check",
        help="check a model before a costly run (registration, outputs, NaN, determinism, cost)",
        description="Check a registered model before a costly run, and say what to fix.",
        epilog=CHECK_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    c.add_argument("name", metavar="NAME", help="the registered model's name (its entry point in group scengrid.models)")
    c.add_argument("--params", type=_params, default={}, help="the model's params as JSON (or @FILE holding it)")
    c.add_argument("--scenarios", type=int, default=4096, help="generated scenarios to check on (default %(default)s)")
    c.add_argument("--json", action="store_true", help="end with one JSON line on stdout")
    c.set_defaults(func=run_check)
    p = actions.add_parser(
        "eval",
        help="evaluate a model under every scenario of a file (or generated ones)",
        description="Evaluate a registered model under every scenario, with the same kernel as the worker, and write "
        "scenario_id, pnl and the model's other columns to Parquet (the portfolio model: its attribution pnl_rates, "
        "pnl_credit, pnl_equity, pnl_options, pnl_fx).",
        epilog=EVAL_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--model", help="the registered model's name (default: portfolio with --portfolio)")
    p.add_argument("--params", type=_params, help="the model's params as JSON (or @FILE holding it)")
    p.add_argument("--portfolio", help="the portfolio model's book: portfolio JSON, a local path or s3://bucket/key")
    given = p.add_mutually_exclusive_group(required=True)
    given.add_argument("--scenarios", help="Parquet scenario or history file, or a JSON stress file (path or s3:// URI)")
    given.add_argument("--generate", type=int, metavar="N", help="generate N Monte Carlo scenarios from the model's factors")
    p.add_argument("--historical", action="store_true", help="the Parquet file is a history of factor changes, replayed row by row")
    p.add_argument("--bootstrap", type=int, metavar="N", help="draw N scenarios from the history's rows (counter-based, by --seed)")
    p.add_argument("--seed", type=int, default=0, help="seed of --generate or --bootstrap (default %(default)s)")
    p.add_argument("--student-t", type=float, metavar="DF", help="with --generate: Student-t with DF degrees of freedom")
    p.add_argument("--out", type=Path, required=True, help="result Parquet file")
    p.add_argument("--json", action="store_true", help="end with one JSON line on stdout")
    p.set_defaults(func=run_eval)

    s = subparsers.add_parser(
        "sample-portfolio",
        help="write a realistic deterministic sample portfolio (JSON)",
        description="Write a sample portfolio: bonds across ratings, maturities and two currencies, equities, "
        "options and fx cash. The same --positions and --seed always give the same file.",
        epilog=SAMPLE_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    s.add_argument("--positions", type=int, required=True, help="number of positions (1-100000)")
    s.add_argument("--seed", type=int, default=7, help="seed (default %(default)s)")
    s.add_argument("--out", type=Path, help="file to write (default: stdout)")
    s.set_defaults(func=run_sample)


def scenario_source(args: argparse.Namespace) -> ScenarioSource:
    """The scenario source the options describe (not yet checked against the model)."""
    if args.generate is not None and (args.historical or args.bootstrap is not None):
        raise InvalidInput("--generate", "--historical and --bootstrap go with --scenarios, not --generate")
    if args.generate is None and args.student_t is not None:
        raise InvalidInput("--student-t", "--student-t goes with --generate")
    try:
        if args.generate is not None:
            t = {"distribution": "student_t", "df": args.student_t} if args.student_t is not None else {}
            return GeneratedScenarios(count=args.generate, seed=args.seed, **t)
        if args.bootstrap is not None:
            return HistoricalScenarios(kind="historical", uri=args.scenarios, bootstrap=True, count=args.bootstrap, seed=args.seed)
        if args.historical:
            return HistoricalScenarios(kind="historical", uri=args.scenarios)
        if args.scenarios.lower().endswith(".json"):
            return StressScenarios(kind="stress", uri=args.scenarios)
        return FileScenarios(kind="file", uri=args.scenarios)
    except ValidationError as exc:
        error = exc.errors()[0]
        option = {"count": "--generate or --bootstrap", "seed": "--seed", "df": "--student-t", "uri": "--scenarios"}
        raise InvalidInput(option.get(str(error["loc"][-1]) if error["loc"] else "", "--scenarios"), error["msg"]) from None


def _params(text: str) -> dict[str, Any]:
    """An argparse type: the model's params, JSON (an object) or @FILE holding it."""
    if text.startswith("@"):
        try:
            text = Path(text[1:]).read_text()
        except OSError as exc:
            raise argparse.ArgumentTypeError(f"cannot read {text[1:]}: {exc.strerror or exc}") from None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"not JSON ({exc.msg} at character {exc.pos}): give an object, e.g. '{{\"notional\": 1e6}}'") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("give a JSON object of params, e.g. '{\"notional\": 1e6}'")
    return value


def model_to_eval(args: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    """The model and its params: --model and --params, with --portfolio as the portfolio's shortcut."""
    name = args.model or ("portfolio" if args.portfolio else None)
    if name is None:
        raise InvalidInput("--model", "name the registered model to evaluate (or give --portfolio FILE for the portfolio model)")
    params = dict(args.params or {})
    if args.portfolio:
        if name != "portfolio":
            raise InvalidInput("--portfolio", f"goes with the portfolio model, not {name!r}: give the model's --params instead")
        params["portfolio"] = args.portfolio
    return name, params


def run_check(args: argparse.Namespace) -> int:
    from scengrid_cli.model_check import check_model

    if args.scenarios < 2 * 1024:
        raise InvalidInput("--scenarios", "check on at least 2048 scenarios (two blocks of the kernel)")
    report = check_model(args.name, args.params, args.scenarios)
    for check in report.checks:
        mark = "ok  " if check.ok else "FAIL"
        print(f"{mark} {check.name}: {check.detail}", file=sys.stderr if args.json else sys.stdout)
    verdict = "passes every check" if report.ok else "fails: fix what FAIL says, then run the check again"
    print(f"model {args.name!r} {verdict}", file=sys.stderr)
    if args.json:
        sys.stdout.write(json.dumps(report.as_json()) + "\n")
    return 0 if report.ok else 2


def run_eval(args: argparse.Namespace) -> int:
    model = load_model(*model_to_eval(args))
    source = resolve_source(scenario_source(args), model.factors)
    started = time.perf_counter()
    columns = evaluate_range(model, source, 0, source.count)
    seconds = time.perf_counter() - started
    table = results_table(0, columns)
    if isinstance(source, StressScenarios):
        names, _ = read_stress_file(source.uri, model.factors.names)
        table = table.add_column(1, "scenario_name", pa.array(names, pa.string()))
    try:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, args.out, compression="zstd")
    except OSError as exc:
        raise InvalidInput("--out", f"cannot write {args.out}: {exc.strerror or exc}") from None
    summary = _summary(columns["pnl"], seconds, args.out)
    print(
        f"{summary['scenarios']:,} scenarios in {seconds:.2f} s ({summary['scenarios_per_s']:,.0f}/s); "
        f"VaR 99% {summary['var_99']:,.2f}, ES 97.5% {summary['es_975']:,.2f}; wrote {args.out}",
        file=sys.stderr,
    )
    if args.json:
        sys.stdout.write(json.dumps(summary) + "\n")
    return 0


def _summary(pnl: Any, seconds: float, out: Path) -> dict[str, Any]:
    return {
        "scenarios": int(pnl.shape[0]),
        "var_99": value_at_risk(pnl, 0.99),
        "es_975": expected_shortfall(pnl, 0.975),
        "mean": float(pnl.mean()),
        "seconds": round(seconds, 4),
        "scenarios_per_s": pnl.shape[0] / max(seconds, 1e-9),
        "out": str(out),
    }


def run_sample(args: argparse.Namespace) -> int:
    if not 1 <= args.positions <= 100_000:
        raise InvalidInput("--positions", "give 1 to 100000 positions")
    if args.seed < 0:
        raise InvalidInput("--seed", "the seed must not be negative")
    text = json.dumps(sample_portfolio(args.positions, args.seed), indent=1) + "\n"
    if args.out is None:
        sys.stdout.write(text)
        return 0
    try:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
    except OSError as exc:
        raise InvalidInput("--out", f"cannot write {args.out}: {exc.strerror or exc}") from None
    print(f"wrote {args.positions} positions to {args.out}", file=sys.stderr)
    return 0
