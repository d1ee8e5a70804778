"""The five service images, as `make images` builds them, run for real with the container engine
against a moto server on the loopback (``--network host``):

- each Batch image imports its entrypoint as its own non-root user on a read-only root;
- each Lambda image imports every handler the template gives it, and the runtime interface
  client its ENTRYPOINT runs;
- a run goes through the images that deploy, each started as AWS starts it: the API function
  (tracker image, CMD as the template's ApiFunction sets it) accepts POST /runs, the sharder,
  worker and collator jobs run their image's CMD, the tracker function (the image's own CMD)
  applies the events as SQS batches, and the API then reports the run COMPLETE, its results,
  a 404 and a 4xx; the Lambda containers run their real ENTRYPOINT (awslambdaric) against a
  stand-in for the Lambda Runtime API (tests/containers/lambda_runtime.py), as a non-root
  user other than the image's, on a read-only root with a writable /tmp;
- the inference image answers a direct invoke and POST /predict with the model baked into it,
  and a bad request with a function error naming the field;
- no image writes outside /tmp, nor compiles any module at run time.

Without an engine or a built image the tests skip and say what to run (`make images`); CI sets
SCENGRID_REQUIRE_IMAGES=1 so that they fail instead."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from scengrid_cli.local.cfn import load_template
from scengrid_cli.local.emulator import free_port
from tests.containers.engine import (
    LAMBDA_USER,
    ROOT,
    changed_paths,
    container,
    engine,
    image_config,
    logs,
    require_image,
    run,
    unavailable,
)
from tests.containers.lambda_runtime import ACCOUNT, RuntimeApi

pytestmark = pytest.mark.e2e

REGION = "us-east-1"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "scengrid-test", "AWS_SECRET_ACCESS_KEY": "scengrid-test"}
TEMPLATE = load_template(ROOT / "infra" / "template.yaml")["Resources"]
BATCH = {"sharder": "SharderJobDefinition", "worker": "WorkerJobDefinition", "collator": "CollatorJobDefinition"}
LAMBDA = {"tracker": "TrackerFunction", "inference": "InferenceFunction"}
TABLE_PROPERTIES = ("AttributeDefinitions", "KeySchema", "BillingMode", "GlobalSecondaryIndexes", "LocalSecondaryIndexes")
SPEC = {"scenarios": {"kind": "generated", "count": 3000, "seed": 11}, "shard_size": 1000}
# The PD model's five features: rate and spread shocks (bp), equity return, rating grade, maturity.
ROWS = [[0.0, 50.0, -0.1, 4.0, 5.0], [100.0, 300.0, -0.4, 6.0, 2.0]]


def handlers_of(service: str) -> list[str]:
    """Each handler that the template's functions run from this service's image."""
    repository = f"${{{service.capitalize()}Repository.RepositoryUri}}"
    return sorted(
        handler
        for resource in TEMPLATE.values()
        if resource["Type"] == "AWS::Lambda::Function" and repository in json.dumps(resource["Properties"]["Code"])
        for handler in resource["Properties"]["ImageConfig"]["Command"]
    )


def literal_env(resource: str) -> dict[str, str]:
    """The template's plain-string environment of a function or job definition (its service
    name for Powertools, and such); references are the stack's, given by ``stack``."""
    props = TEMPLATE[resource]["Properties"]
    if "ContainerProperties" in props:
        pairs = {e["Name"]: e["Value"] for e in props["ContainerProperties"].get("Environment", [])}
    else:
        pairs = props.get("Environment", {}).get("Variables", {})
    return {k: v for k, v in pairs.items() if isinstance(v, str) and not k.startswith("SCENGRID_")}


def aws(service: str, endpoint: str) -> Any:
    return boto3.client(service, endpoint_url=endpoint, region_name=REGION,
                        aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
                        aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"])


# ---------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A moto server on the loopback, for the containers (``--network host``) and the test."""
    if engine() is None:
        unavailable("no container engine works here: run scripts/container-engine (as root), then `make images`")
    port = free_port()
    log = tmp_path_factory.mktemp("emulator") / "moto.log"
    with log.open("w") as out:
        server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                                  stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(f"{url}/moto-api/", timeout=2)
            break
        except OSError:
            assert server.poll() is None and time.monotonic() < deadline, log.read_text()[-2000:]
            time.sleep(0.3)
    yield url
    server.terminate()
    try:
        server.wait(10)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


@pytest.fixture
def stack(emulator: str) -> dict[str, str]:
    """The resources the services use, fresh for each test, and the settings that name them (as
    the template's job definitions and functions pass them)."""
    prefix = f"img-{uuid.uuid4().hex[:8]}"
    aws("s3", emulator).create_bucket(Bucket=prefix)
    events, sqs, dynamodb = aws("events", emulator), aws("sqs", emulator), aws("dynamodb", emulator)
    events.create_event_bus(Name=prefix)
    dead_letters = sqs.create_queue(QueueName=f"{prefix}-work-dlq")["QueueUrl"]
    tracker = sqs.create_queue(QueueName=f"{prefix}-tracker")["QueueUrl"]
    tracker_arn = sqs.get_queue_attributes(QueueUrl=tracker, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    rule = TEMPLATE["AllEventsRule"]["Properties"]  # every scengrid event to the tracker's queue
    events.put_rule(Name=f"{prefix}-all", EventBusName=prefix, EventPattern=json.dumps(rule["EventPattern"]))
    events.put_targets(Rule=f"{prefix}-all", EventBusName=prefix, Targets=[{"Id": "tracker", "Arn": tracker_arn}])
    tables = {}
    for logical, setting in (
        ("RunsTable", "RUNS"), ("ShardsTable", "SHARDS"), ("IdempotencyTable", "IDEMPOTENCY"), ("AdmissionTable", "ADMISSION"),
    ):
        props = TEMPLATE[logical]["Properties"]
        tables[f"SCENGRID_{setting}_TABLE"] = name = f"{prefix}-{setting.lower()}"
        dynamodb.create_table(TableName=name, **{k: props[k] for k in TABLE_PROPERTIES if k in props})
    return {
        **CREDENTIALS,
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "SCENGRID_ENDPOINT_URL": emulator,
        "SCENGRID_REGION": REGION,
        "SCENGRID_BUCKET": prefix,
        "SCENGRID_EVENT_BUS": prefix,
        "SCENGRID_WORK_QUEUE_PREFIX": f"{prefix}_run_",  # the sharder makes each run's queue, the tracker ends it
        "SCENGRID_WORK_DEAD_LETTER_QUEUE_URL": dead_letters,
        "SCENGRID_TRACKER_QUEUE_URL": tracker,
        "TRACKER_QUEUE_ARN": tracker_arn,
        **tables,
    }


def batch_env(stack: dict[str, str], service: str, run_id: str, **extra: str) -> dict[str, str]:
    return {**stack, **literal_env(BATCH[service]), "SCENGRID_RUN_ID": run_id, "AWS_BATCH_JOB_ID": f"{service}-job", **extra}


def lambda_env(stack: dict[str, str], function: str, runtime: RuntimeApi) -> dict[str, str]:
    """What Lambda gives a function's process: the Runtime API's address, the function's names
    and memory, and the template's environment (X-Ray has no daemon here: tracing is off)."""
    props = TEMPLATE[function]["Properties"]
    return {
        **stack,
        **literal_env(function),
        "AWS_LAMBDA_RUNTIME_API": runtime.address,
        "AWS_LAMBDA_FUNCTION_NAME": runtime.function_arn.rsplit(":", 1)[1],
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(props.get("MemorySize", 128)),
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{function}",
        "AWS_LAMBDA_LOG_STREAM_NAME": "test",
        "POWERTOOLS_METRICS_NAMESPACE": "scengrid-test",
        "POWERTOOLS_TRACE_DISABLED": "true",
    }


def rest_event(method: str, path: str, body: Any = None, headers: dict[str, str] | None = None) -> dict[str, Any]:
    """API Gateway's REST proxy-integration event for one IAM-signed request."""
    headers = {"Content-Type": "application/json", **(headers or {})}
    return {
        "resource": path,
        "path": path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "requestId": str(uuid.uuid4()),
            "stage": "v1",
            "httpMethod": method,
            "path": f"/v1{path}",
            "accountId": ACCOUNT,
            "identity": {"accountId": ACCOUNT, "caller": "AIDATEST", "user": "AIDATEST", "sourceIp": "127.0.0.1",
                         "userArn": f"arn:aws:iam::{ACCOUNT}:user/image-test"},
        },
        "body": None if body is None else json.dumps(body),
        "isBase64Encoded": False,
    }


def sqs_event(messages: list[dict[str, Any]], queue_arn: str) -> dict[str, Any]:
    """The event Lambda's SQS event source sends for these messages."""
    return {"Records": [
        {"messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
         "attributes": m.get("Attributes", {}), "messageAttributes": m.get("MessageAttributes", {}),
         "md5OfBody": m["MD5OfBody"], "eventSource": "aws:sqs", "eventSourceARN": queue_arn, "awsRegion": REGION}
        for m in messages
    ]}


def feed_tracker(stack: dict[str, str], runtime: RuntimeApi, name: str) -> int:
    """What the SQS event source does: the tracker queue's messages, in batches of up to 10, to
    the tracker function; each batch must succeed whole. Returns the messages fed."""
    sqs, url, fed, empty = aws("sqs", stack["SCENGRID_ENDPOINT_URL"]), stack["SCENGRID_TRACKER_QUEUE_URL"], 0, 0
    while empty < 2:
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
        if not messages:
            empty += 1
            continue
        answer = runtime.invoke(sqs_event(messages, stack["TRACKER_QUEUE_ARN"]))
        assert (answer.kind, answer.body) == ("response", {"batchItemFailures": []}), (answer, logs(name))
        sqs.delete_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)])
        fed += len(messages)
    return fed


def api_call(runtime: RuntimeApi, name: str, method: str, path: str, body: Any = None, **headers: str) -> tuple[int, Any]:
    answer = runtime.invoke(rest_event(method, path, body, {k.replace("_", "-"): v for k, v in headers.items()}))
    assert answer.kind == "response", (answer, logs(name))
    return answer.body["statusCode"], json.loads(answer.body["body"] or "null")


def job(image: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    """A Batch job: the image's own CMD as its own USER, on a read-only root (/tmp writable)."""
    result = run(image, env=env, timeout=300)
    assert result.returncode == 0, f"{image} exited {result.returncode}:\n{result.stderr[-3000:]}\n{result.stdout[-3000:]}"
    return result


# ---------------------------------------------------------------- tests
@pytest.mark.parametrize("service", list(BATCH))
def test_batch_image_imports_its_entrypoint_as_its_user_on_a_read_only_root(service: str) -> None:
    image = require_image(service)
    config = image_config(image)
    assert config["Cmd"] == TEMPLATE[BATCH[service]]["Properties"]["ContainerProperties"]["Command"]
    probe = f"import os, services.{service}.main as m; print(callable(m.main), os.getuid())"
    result = run(image, ["python", "-c", probe])
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split() == ["True", config["User"]] and config["User"] not in ("", "0", "root")


@pytest.mark.parametrize("service", list(LAMBDA))
def test_lambda_image_imports_every_handler_of_the_template_and_its_runtime_client(service: str) -> None:
    image = require_image(service)
    config = image_config(image)
    assert config["Entrypoint"] == ["/opt/venv/bin/python", "-m", "awslambdaric"]
    assert config["Cmd"] == TEMPLATE[LAMBDA[service]]["Properties"]["ImageConfig"]["Command"]
    probe = (
        "import importlib, json, sys\n"
        "import awslambdaric.bootstrap, awslambdaric.lambda_runtime_client as client\n"
        "found = {}\n"
        "for handler in sys.argv[1:]:\n"
        "    module, name = handler.rsplit('.', 1)\n"
        "    found[handler] = callable(getattr(importlib.import_module(module), name, None))\n"
        "print(json.dumps({'handlers': found, 'native_client': client.runtime_client is not None}))\n"
    )
    handlers = handlers_of(service)
    result = run(image, ["-c", probe, *handlers], entrypoint="/opt/venv/bin/python", user=LAMBDA_USER,
                 env={"AWS_REGION": REGION, "POWERTOOLS_TRACE_DISABLED": "true"})
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads(result.stdout.splitlines()[-1]) == {"handlers": dict.fromkeys(handlers, True), "native_client": True}


def test_a_run_goes_through_the_images_that_deploy(stack: dict[str, str]) -> None:
    tracker, sharder, worker, collator = (require_image(s) for s in ("tracker", "sharder", "worker", "collator"))
    with (
        RuntimeApi("scengrid-api") as api, RuntimeApi("scengrid-tracker") as events,
        container(tracker, TEMPLATE["ApiFunction"]["Properties"]["ImageConfig"]["Command"],
                  env=lambda_env(stack, "ApiFunction", api), user=LAMBDA_USER) as api_name,
        container(tracker, env=lambda_env(stack, "TrackerFunction", events), user=LAMBDA_USER) as tracker_name,
    ):
        status, accepted = api_call(api, api_name, "POST", "/runs", SPEC, Idempotency_Key=uuid.uuid4().hex)
        assert status == 202, accepted
        run_id = accepted["run_id"]
        print(f"API function: first answer {api.first_answer_s:.1f} s after its container started")

        job(sharder, batch_env(stack, "sharder", run_id, SCENGRID_RUN_SPEC=json.dumps(SPEC)))
        s3 = aws("s3", stack["SCENGRID_ENDPOINT_URL"])
        groups = json.loads(s3.get_object(Bucket=stack["SCENGRID_BUCKET"], Key=f"runs/{run_id}/worker-groups.json")["Body"].read())
        queue_url = groups[0]["queue_url"]  # the Map item hands the worker its run's queue
        job(worker, batch_env(stack, "worker", run_id, SCENGRID_WORK_QUEUE_URL=queue_url,
                              SCENGRID_WORKER_POLL_S="0.5", SCENGRID_WORKER_IDLE_POLLS="2"))
        # run-requested, 3 shard-written, 3 shard-done (at least: a duplicate delivery is allowed)
        assert feed_tracker(stack, events, tracker_name) >= 7
        collated = job(collator, batch_env(stack, "collator", run_id, SCENGRID_COLLATE_WAIT_S="30"))
        assert "Matplotlib" not in collated.stderr, collated.stderr[-2000:]  # no config or font cache to make
        assert feed_tracker(stack, events, tracker_name) >= 1  # all-done
        remaining = aws("sqs", stack["SCENGRID_ENDPOINT_URL"]).list_queues(QueueNamePrefix=stack["SCENGRID_WORK_QUEUE_PREFIX"])
        assert queue_url not in remaining.get("QueueUrls", []), "the tracker deletes the round's work queue at all-done"

        status, view = api_call(api, api_name, "GET", f"/runs/{run_id}")
        assert (status, view["status"], view["progress"]["shards_done"]) == (200, "COMPLETE", 3), view
        status, results = api_call(api, api_name, "GET", f"/runs/{run_id}/results")
        assert status == 200 and results["summary"]["scenarios"] == SPEC["scenarios"]["count"], results
        dataset = [name for name in results["urls"] if name.startswith("pnl/")]
        assert len(results["urls"]) == 3 + 3 and len(dataset) == 3, results  # summary, report, histogram, a file per shard
        assert api_call(api, api_name, "GET", "/runs/does-not-exist")[0] == 404
        status, refused = api_call(api, api_name, "POST", "/runs", {**SPEC, "shard_size": 0})
        assert status in (400, 422) and "shard_size" in json.dumps(refused), refused
    keys = [o["Key"] for o in aws("s3", stack["SCENGRID_ENDPOINT_URL"]).list_objects_v2(Bucket=stack["SCENGRID_BUCKET"])["Contents"]]
    assert sum(k.startswith(f"runs/{run_id}/pnl/") for k in keys) == 3, keys  # the P&L dataset: the workers' files, nothing merged


def test_inference_answers_with_the_model_in_its_image(stack: dict[str, str]) -> None:
    image = require_image("inference")
    with RuntimeApi("scengrid-inference") as runtime, \
            container(image, env=lambda_env(stack, "InferenceFunction", runtime), user=LAMBDA_USER) as name:
        direct = runtime.invoke({"rows": ROWS})
        assert direct.kind == "response", (direct, logs(name))
        assert len(direct.body["predictions"]) == len(ROWS) and all(0 < p < 1 for p in direct.body["predictions"])
        print(f"inference: first answer {runtime.first_answer_s:.1f} s after its container started")
        http = runtime.invoke({**rest_event("POST", "/predict", {"rows": ROWS})})
        assert http.kind == "response" and http.body["statusCode"] == 200, (http, logs(name))
        assert json.loads(http.body["body"])["predictions"] == direct.body["predictions"]
        bad = runtime.invoke({"rows": [[0.0, 50.0, -0.1, 9.0, 5.0]]})  # no rating grade 9
        assert bad.kind == "error" and bad.body["errorType"] == "InvalidInput", bad
        assert "rating_grade" in bad.body["errorMessage"]


@pytest.mark.parametrize("service", [*BATCH, *LAMBDA])
def test_nothing_is_written_outside_tmp_nor_compiled_at_run_time(service: str) -> None:
    """As root, on a writable root and with bytecode writing on, importing what the image runs
    changes no file but under /tmp: every module comes compiled, nothing needs a cache."""
    image = require_image(service)
    modules = handlers_of(service) if service in LAMBDA else [f"services.{service}.main.main"]
    probe = (
        "import importlib, sys\n"
        "for entry in sys.argv[1:]:\n"
        "    importlib.import_module(entry.rsplit('.', 1)[0])\n"
        + ("import awslambdaric.bootstrap\n" if service in LAMBDA else "")
    )
    env = {"PYTHONDONTWRITEBYTECODE": "", "AWS_REGION": REGION, "POWERTOOLS_TRACE_DISABLED": "true"}
    options = {"entrypoint": "/opt/venv/bin/python", "user": "0", "read_only": False, "env": env}

    def changes(args: list[str]) -> set[str]:
        with container(image, args, **options) as name:
            exit_code = subprocess.run([engine(), "wait", name], capture_output=True, text=True, timeout=300).stdout.strip()
            assert exit_code == "0", logs(name)
            return {p for p in changed_paths(name) if not p.startswith("/tmp")}

    engine_own = changes(["-c", "pass"])  # what the engine itself changes (/etc/passwd and such)
    written = sorted(changes(["-c", probe, *modules]) - engine_own)
    assert written == [], f"{image} wrote {written[:20]}"
