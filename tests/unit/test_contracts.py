import json
import re
from pathlib import Path

import pytest

from scengrid import layout
from scengrid.errors import UnknownModel
from scengrid.events import EVENT_TYPES, ShardDone, entry_for, parse_envelope
from scengrid.models import available_models, load_model
from scengrid_cli.schemas import stale_schemas
from scengrid.work import MAX_ARRAY_CHILDREN, plan_worker_groups, share_identifier, work_queue_name

ROOT = Path(__file__).resolve().parents[2]


def test_event_schemas_in_infra_match_the_models() -> None:
    assert stale_schemas() == [], "run `make schemas`"


def test_every_event_type_has_a_schema_file() -> None:
    assert {p.stem for p in (ROOT / "infra" / "schemas").glob("*.json")} == set(EVENT_TYPES)


def test_envelope_round_trip_without_account() -> None:
    event = ShardDone(run_id="r1", shard_id="000001", output_key="k", rows=5, duration_s=0.1, task_id="t")
    entry = entry_for(event, "worker")
    body = {"id": "1", "source": entry["Source"], "detail-type": entry["DetailType"], "detail": json.loads(entry["Detail"])}
    assert parse_envelope(json.dumps(body)) == event


def test_foreign_events_are_rejected() -> None:
    body = {"id": "1", "source": "aws.s3", "detail-type": "shard-done", "detail": {}}
    with pytest.raises(ValueError, match="not a scengrid event"):
        parse_envelope(body)


def test_worker_groups_respect_the_array_job_limit() -> None:
    groups = plan_worker_groups("r", workers=25_001, shards=30_000, queue_url="q", share="runr")
    assert [g.size for g in groups] == [8334, 8334, 8333]
    assert all(g.size <= MAX_ARRAY_CHILDREN for g in groups)
    assert {(g.queue_url, g.share) for g in groups} == {("q", "runr")}
    assert plan_worker_groups("r", workers=8, shards=3, queue_url="q", share="runr")[0].size == 3


def test_a_runs_work_queue_is_named_for_its_run_and_round_within_sqs_rules() -> None:
    assert work_queue_name("scengrid_run_", "20261130-043100-abcdef12", 2) == "scengrid_run_20261130-043100-abcdef12_r2"
    # a caller's run id may hold characters SQS refuses, and be longer than a queue name may be
    odd = work_queue_name("scengrid_run_", "desk.a:" + "x" * 64, 1)
    assert len(odd) == 80 and re.fullmatch(r"[A-Za-z0-9_-]+", odd) and odd.startswith("scengrid_run_desk-a-x")
    assert odd != work_queue_name("scengrid_run_", "desk.a:" + "x" * 63 + "y", 1)  # told apart by the digest


def test_a_run_without_a_share_is_a_share_of_its_own() -> None:
    assert share_identifier("20261130-043100-abcdef12", None) == "run20261130043100abcdef12"
    assert share_identifier("20261130-043100-abcdef12", "desk7") == "desk7"


def test_models_are_found_by_name_only() -> None:
    assert "linear" in available_models()
    with pytest.raises(UnknownModel, match="registered: .*linear"):
        load_model("services.worker.main", {})


def test_state_machine_reads_the_worker_groups_key_of_the_layout() -> None:
    asl = json.loads((ROOT / "infra" / "statemachine" / "run.asl.json").read_text())
    key_template = asl["States"]["Evaluate"]["ItemReader"]["Parameters"]["Key.$"]
    assert key_template == "States.Format('" + layout.worker_groups_key("{}") + "', $.detail.run_id)"


def test_every_asl_placeholder_is_substituted_by_the_template() -> None:
    import re

    from scengrid_cli.local.cfn import load_template

    asl = (ROOT / "infra" / "statemachine" / "run.asl.json").read_text()
    template = load_template(ROOT / "infra" / "template.yaml")
    subs = template["Resources"]["RunStateMachine"]["Properties"]["DefinitionSubstitutions"]
    assert set(re.findall(r"\$\{(\w+)\}", asl)) == set(subs)


def _template_resource(name: str) -> dict:
    from scengrid_cli.local.cfn import load_template

    return load_template(ROOT / "infra" / "template.yaml")["Resources"][name]["Properties"]


def test_the_athena_table_reads_the_pnl_dataset_prefix_and_only_parquet_goes_there() -> None:
    table = _template_resource("PnlTable")["TableInput"]
    dataset = {"Fn::Sub": "s3://${Bucket}/" + layout.pnl_dataset_prefix("${!run_id}")}
    assert table["Parameters"]["storage.location.template"] == dataset
    assert table["StorageDescriptor"]["Location"] == dataset
    prefix = layout.pnl_dataset_prefix("r")
    assert layout.shard_key("r", "000001").startswith(prefix) and layout.shard_key("r", "000001").endswith(".parquet")
    others = (layout.manifest_key("r"), layout.worker_groups_key("r"),
              layout.summary_key("r"), layout.report_key("r"), layout.histogram_key("r"))
    assert [k for k in others if k.startswith(prefix)] == []


def test_the_collator_may_write_every_result_key() -> None:
    from fnmatch import fnmatchcase

    statements = _template_resource("CollatorJobRole")["Policies"][0]["PolicyDocument"]["Statement"]
    writes = [s["Resource"] for s in statements if s["Action"] == "s3:PutObject"]
    patterns = [r["Fn::Sub"].removeprefix("${Bucket.Arn}/") for w in writes for r in (w if isinstance(w, list) else [w])]
    for key in (layout.summary_key("r"), layout.report_key("r"), layout.histogram_key("r")):
        assert any(fnmatchcase(key, p) for p in patterns), key
    assert not any(fnmatchcase(layout.shard_key("r", "000001"), p) for p in patterns)  # the dataset is the workers'


def test_the_workers_write_the_dataset_and_the_collator_reads_it() -> None:
    from fnmatch import fnmatchcase

    def patterns(role: str, action: str) -> list[str]:
        statements = _template_resource(role)["Policies"][0]["PolicyDocument"]["Statement"]
        found = [s["Resource"] for s in statements if action in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])]
        return [r["Fn::Sub"].removeprefix("${Bucket.Arn}/") for w in found for r in (w if isinstance(w, list) else [w])]

    key = layout.shard_key("r", "000001")
    assert any(fnmatchcase(key, p) for p in patterns("WorkerJobRole", "s3:PutObject")), key
    assert any(fnmatchcase(key, p) for p in patterns("CollatorJobRole", "s3:GetObject")), key


def test_results_keep_their_names_locally_and_the_pnl_dataset_is_a_folder() -> None:
    keys = (layout.summary_key("r"), layout.shard_key("r", "000001"), layout.report_key("r"), layout.histogram_key("r"))
    assert [layout.result_name("r", k) for k in keys] == ["summary.json", "pnl/000001.parquet", "report.html", "pnl-histogram.png"]
