"""The REST API (API Gateway → this Lambda; locally, an HTTP adapter sends it the same events).

Routes are thin: they validate (pydantic, through the resolver), call one function of
``services.tracker.runs`` or ``services.tracker.queries``, and return. Errors map to HTTP in one place."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.params import Header, Path, Query
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, Field

from scengrid.errors import Conflict, InvalidInput, OverLimit, RunNotFound
from scengrid.observability import service_logger, service_tracer
from services.tracker.runs import IDEMPOTENCY, cancel_run, retry_run, submit_run
from scengrid.user_files import require_s3
from scengrid.spec import RunSpec
from scengrid.status import ShardRecord, Status

from services.tracker.queries import RunView, list_runs, results_of, run_view, shards_of

# A run-requested event must fit EventBridge's 256 KiB entry, and Step Functions' status-change
# events carry the execution's input (the run-requested envelope) only up to 248 KiB: the
# tracker ties an execution to its run through it. The envelope adds well under 8 KiB.
MAX_BODY_BYTES = 240 * 1024
RUN_ID = Annotated[str, Path(pattern=r"^[A-Za-z0-9_.:-]{1,64}$", description="run id")]

logger = service_logger("api")
tracer = service_tracer("api")
app = APIGatewayRestResolver(enable_validation=True)


class Accepted(BaseModel):
    run_id: str
    round: int = 1
    status_url: str


class RunPage(BaseModel):
    runs: list[RunView]
    next_token: str | None


class OverLimitAnswer(BaseModel):
    """429: a limit refuses the request for now; nothing was requested."""

    error: str
    limit: Literal["max_active_runs", "max_scenarios_in_flight"] = Field(description="the setting that refuses it")
    maximum: int = Field(description="the limit's value")
    current: int = Field(description="what is in flight now: runs, or scenarios")
    requested: int = Field(description="what this request would add")
    retry_after_s: int = Field(description="the Retry-After header: when the runs in flight are expected to make room")


OVER_LIMIT = {
    "description": "a limit refuses the run for now (too many active runs, or scenarios in flight over the quota); "
    "nothing was requested: send it again after Retry-After seconds",
    "headers": {"Retry-After": {"description": "seconds to wait before sending it again", "schema": {"type": "integer"}}},
    "content": {"application/json": {"model": OverLimitAnswer}},
}


def _error(status: int, message: str, field: str | None = None) -> Response:
    body: dict[str, Any] = {"error": message}
    if field:
        body["field"] = field
    return Response(status_code=status, content_type="application/json", body=body)


def _field_of(error: dict[str, Any]) -> str:
    if error.get("type") == "json_invalid":
        return "body"
    return ".".join(str(p) for p in error.get("loc", ()) if p != "body") or "body"


@app.exception_handler(RequestValidationError)
def _unprocessable(exc: RequestValidationError) -> Response:
    """422 naming each field (its path) and what is wrong with it."""
    errors = [{"field": _field_of(e), "problem": e.get("msg", e.get("type"))} for e in exc.errors()]
    return Response(
        status_code=422,
        content_type="application/json",
        body={"error": "; ".join(f"{e['field']}: {e['problem']}" for e in errors), "errors": errors},
    )


@app.exception_handler(InvalidInput)
def _invalid(exc: InvalidInput) -> Response:
    return _error(400, str(exc), exc.field)


@app.exception_handler(RunNotFound)
def _not_found(exc: RunNotFound) -> Response:
    return _error(404, str(exc), "run_id")


@app.exception_handler(Conflict)
def _conflict(exc: Conflict) -> Response:
    return _error(409, str(exc))


@app.exception_handler(OverLimit)
def _over_limit(exc: OverLimit) -> Response:
    answer = OverLimitAnswer(
        error=str(exc), limit=exc.limit, maximum=exc.maximum, current=exc.current, requested=exc.requested,
        retry_after_s=exc.retry_after_s,
    )
    return Response(
        status_code=429, content_type="application/json", body=answer.model_dump(),
        headers={"Retry-After": str(exc.retry_after_s)},
    )


def _accepted(run_id: str, round_: int = 1) -> Response[Accepted]:
    location = f"/runs/{run_id}"
    return Response(
        status_code=202,
        content_type="application/json",
        body=Accepted(run_id=run_id, round=round_, status_url=location).model_dump(),
        headers={"Location": location},
    )


@app.post("/runs", summary="Submit a run", responses={202: {"description": "run requested"}, 429: OVER_LIMIT})
def create_run(
    spec: RunSpec,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", max_length=128)] = None,
) -> Response[Accepted]:
    require_s3(spec.named_files())
    return _accepted(submit_run(spec, idempotency_key=idempotency_key))


@app.get("/runs", summary="List runs, a page at a time")
def get_runs(
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    next_token: Annotated[str | None, Query(max_length=2048)] = None,
) -> RunPage:
    runs, token = list_runs(limit, next_token)
    return RunPage(runs=runs, next_token=token)


@app.get("/runs/<run_id>", summary="Status, shard counts, throughput, ETA and timings of a run")
def get_run(run_id: RUN_ID) -> RunView:
    return run_view(run_id)


@app.get("/runs/<run_id>/shards", summary="The shards of a run, optionally of one status")
def get_shards(run_id: RUN_ID, status: Annotated[Status | None, Query()] = None) -> list[ShardRecord]:
    return shards_of(run_id, status)


@app.get("/runs/<run_id>/results", summary="The summary and presigned URLs of a COMPLETE run")
def get_results(run_id: RUN_ID) -> dict[str, Any]:
    return results_of(run_id)


@app.post(
    "/runs/<run_id>/retry", summary="Re-run only the FAILED or missing shards",
    responses={202: {"description": "retry requested"}, 429: OVER_LIMIT},
)
def post_retry(run_id: RUN_ID) -> Response[Accepted]:
    return _accepted(run_id, retry_run(run_id))


@app.delete("/runs/<run_id>", summary="Cancel a run: stop its execution and drop its remaining shards", responses={202: {"description": "cancellation requested"}})
def delete_run(run_id: RUN_ID) -> Response[Accepted]:
    cancel_run(run_id)
    return _accepted(run_id)


@logger.inject_lambda_context(correlation_id_path="requestContext.requestId")
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    IDEMPOTENCY.register_lambda_context(context)
    refused = _refuse_body(event)
    return refused if refused is not None else app.resolve(event, context)


def _refuse_body(event: dict[str, Any]) -> dict[str, Any] | None:
    """Bodies that are too large or not JSON are refused before anything parses them."""
    body = event.get("body") or ""
    headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
    content_type = headers.get("content-type", "application/json").split(";")[0].strip().lower()
    if len(body.encode()) > MAX_BODY_BYTES:
        status, message = 413, f"the request body is {len(body.encode())} bytes; the limit is {MAX_BODY_BYTES}"
    elif body and content_type not in ("application/json", ""):
        status, message = 415, f"the body is {content_type}; send JSON with Content-Type: application/json"
    else:
        return None
    return {
        "statusCode": status,
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps({"error": message, "field": "body"}),
    }
