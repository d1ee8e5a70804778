"""``scengrid model eval`` (the portfolio model over a scenario file, offline, with the same
kernel as the worker) and ``scengrid sample-portfolio``."""

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
  scengrid model eval --portfolio book.json --scenarios shocks.parquet --out results.parquet
  scengrid model eval --portfolio s3://bucket/book.json --scenarios stress.json --out stress.parquet
  scengrid model eval --portfolio book.json --scenarios history.parquet --bootstrap 100000 --seed 3 --out r.parquet
  scengrid model eval --portfolio book.json --generate 200000 --seed 42 --student-t 5 --out mc.parquet

Scenario files: a Parquet file with scenario_id (0..n-1) and one column per factor
(rate.USD.5, spread.BBB, equity.SPX, vol.SPX, fx.EUR, ...), a Parquet history of factor
changes (--historical, or --bootstrap N), or a JSON file of named stress scenarios. See
docs/model.md."""

SAMPLE_EXAMPLES = """examples:
  scengrid sample-portfolio --positions 1000 --seed 7 --out book.json
  scengrid sample-portfolio --positions 20 | jq '.positions[0]'"""


def register(subparsers: argparse._SubParsersAction) -> None:
    model = subparsers.add_parser("model", help="evaluate the portfolio model offline", description="Evaluate the portfolio model offline.")
    actions = model.add_subparsers(dest="action", metavar="ACTION", required=True)
    p = actions.add_parser(
        "eval",
        help="revalue a portfolio under every scenario of a file (or generated ones)",
        description="Revalue a portfolio under every scenario, with the same kernel as the worker, and write "
        "the P&L and its attribution (pnl_rates, pnl_credit, pnl_equity, pnl_options, pnl_fx) to Parquet.",
        epilog=EVAL_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--portfolio", required=True, help="portfolio JSON: a local path or s3://bucket/key")
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


def run_eval(args: argparse.Namespace) -> int:
    model = load_model("portfolio", {"portfolio": args.portfolio})
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
