"""Inference Lambda entrypoint (container image, ``services.inference.handler.lambda_handler``).

The inference service is not built yet: no model is deployed, and every request, through
API Gateway (``POST /predict``) or a direct Invoke, is answered 501 with a message that says
so. The handler exists so that the image, the function and the route can be deployed and
wired now; the model serving replaces it."""

from __future__ import annotations

import json
from typing import Any

from scengrid.observability import service_logger

NOT_DEPLOYED = "inference model not deployed yet"
NOT_IMPLEMENTED = 501

logger = service_logger("inference")


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:  # noqa: ARG001 - the Lambda signature
    logger.warning(NOT_DEPLOYED)
    return {
        "statusCode": NOT_IMPLEMENTED,
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps({"error": NOT_DEPLOYED}),
    }
