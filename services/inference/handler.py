"""Inference Lambda (container image, ``services.inference.handler.lambda_handler``): the PD
model behind a direct Invoke and API Gateway's ``POST /predict`` (proxy integration).

The model is loaded at the first invocation and kept for the container's life
(``scengrid.inference.loader``); the request and response are ``scengrid.inference.contract``'s.

- Direct Invoke: the payload is the request, the return value the response. A bad request or
  a model that cannot be loaded raises, and Lambda reports a function error whose
  ``errorType`` (InvalidInput, ModelNotFound, ModelChecksumMismatch, ModelInvalid) and
  ``errorMessage`` say what to fix.
- ``POST /predict``: 200 with the response; 400 naming the field; 413 over 6 MB; 415 when the
  body is not JSON; 503 when the model cannot be loaded (the message says why)."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.metrics.functions import is_metrics_disabled
from aws_lambda_powertools.utilities.typing import LambdaContext

from scengrid.errors import InvalidInput, ModelUnavailable
from scengrid.inference.contract import MAX_PAYLOAD_BYTES, parse_request
from scengrid.inference.loader import model_holder, predict
from scengrid.observability import service_logger, service_metrics, service_tracer

logger = service_logger("inference")
tracer = service_tracer("inference")
metrics = service_metrics("inference")


def _metric(name: str, unit: MetricUnit, value: float) -> None:
    """Metrics disabled (locally), Powertools keeps them unflushed and prints them at the 100th:
    add none then."""
    if not is_metrics_disabled():
        metrics.add_metric(name=name, unit=unit, value=value)


@tracer.capture_method(capture_response=False)
def answer(payload: Any) -> dict[str, Any]:
    """Validate, make sure the model is loaded, predict."""
    request = parse_request(payload)
    holder = model_holder()
    loads = holder.loads
    model = holder.get()
    if holder.loads != loads:
        logger.info("model loaded", extra={"model_uri": model.uri, "model_version": model.version,
                                           "fetch_s": model.fetch_s, "session_s": model.session_s})
        _metric("ModelLoads", MetricUnit.Count, 1)
        _metric("ModelLoadSeconds", MetricUnit.Seconds, model.fetch_s + model.session_s)
    result = predict(request, model)
    _metric("Predictions", MetricUnit.Count, len(result["predictions"]))
    return result


def _json_response(status: int, body: dict[str, Any]) -> dict[str, Any]:
    return {"statusCode": status, "headers": {"Content-Type": "application/json"}, "body": json.dumps(body, separators=(",", ":"))}


def answer_http(event: dict[str, Any]) -> dict[str, Any]:
    """POST /predict through API Gateway: errors map to HTTP here, and only here."""
    body = event.get("body") or ""
    headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
    content_type = headers.get("content-type", "application/json").split(";")[0].strip().lower()
    try:
        raw = base64.b64decode(body, validate=True) if event.get("isBase64Encoded") else body.encode()
    except (binascii.Error, ValueError):
        return _json_response(400, {"error": "the body is not valid base64", "field": "body"})
    if len(raw) > MAX_PAYLOAD_BYTES:
        return _json_response(413, {"error": f"the request is {len(raw):,} bytes; Lambda takes at most {MAX_PAYLOAD_BYTES:,}", "field": "body"})
    if content_type not in ("application/json", ""):
        return _json_response(415, {"error": f"the body is {content_type}; send JSON with Content-Type: application/json", "field": "body"})
    try:
        return _json_response(200, answer(raw))
    except InvalidInput as exc:
        return _json_response(400, {"error": str(exc), "field": exc.field})
    except ModelUnavailable as exc:
        logger.error("model unavailable", extra={"error": str(exc)})
        return _json_response(503, {"error": str(exc)})


@metrics.log_metrics
@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if "httpMethod" in event and "requestContext" in event:
        return answer_http(event)
    return answer(event)
