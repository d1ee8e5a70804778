"""Write (``--write``) or check infra/openapi.json, the API's OpenAPI spec: the routes of this
API's resolver, and ``POST /predict``, which API Gateway sends to the inference function (its
request and response are the shared contract's, scengrid.inference.contract)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from scengrid.inference.contract import PredictResponse, request_schema

from services.tracker.api import app

SPEC_FILE = Path(__file__).resolve().parents[2] / "infra" / "openapi.json"
REF = "#/components/schemas/{model}"
# The function's errors name the field; API Gateway's own answers (a body that is not text,
# a refused signature) carry a message.
PREDICT_ERROR = {
    "title": "PredictError",
    "anyOf": [
        {"type": "object", "properties": {"error": {"type": "string"}, "field": {"type": "string"}}, "required": ["error"]},
        {"type": "object", "properties": {"message": {"type": "string"}}, "required": ["message"]},
    ],
}


# API Gateway's extension for IAM auth: clients sign each request with SigV4 (service execute-api).
SIGV4 = {
    "type": "apiKey",
    "name": "Authorization",
    "in": "header",
    "x-amazon-apigateway-authtype": "awsSigv4",
    "description": "AWS Signature Version 4 of the request (service execute-api), with the caller's IAM credentials",
}
SERVER = {
    "url": "https://{restApiId}.execute-api.{region}.amazonaws.com/v1",
    "description": "the deployed stack (outputs ApiUrl and RestApiId); locally, the URL `scengrid local up` prints",
    "variables": {"restApiId": {"default": "abcdef1234"}, "region": {"default": "us-east-1"}},
}
GATEWAY_REFUSAL = {
    "title": "GatewayRefusal",
    "type": "object",
    "properties": {"message": {"type": "string"}},
    "required": ["message"],
}
REFUSED = "refused by IAM auth: a missing, expired or wrong signature, an unknown key, or no execute-api:Invoke grant"


def _json(schema_ref: str, description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": {"$ref": schema_ref}}}}


def add_predict(spec: dict) -> None:
    """``POST /predict`` and its schemas, from the inference contract."""
    schemas = spec["components"]["schemas"]
    request = request_schema(REF)
    response = PredictResponse.model_json_schema(ref_template=REF)
    for found in (request, response):
        schemas.update(found.pop("$defs", {}))
    schemas.update({"PredictRequest": request, "PredictResponse": response, "PredictError": PREDICT_ERROR})
    error = "#/components/schemas/PredictError"
    spec["paths"]["/predict"] = {"post": {
        "operationId": "predict",
        "summary": "Probabilities of default from the PD model (the inference function)",
        "requestBody": {"required": True, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/PredictRequest"}}}},
        "responses": {
            "200": _json("#/components/schemas/PredictResponse", "predictions and the model's version"),
            "400": _json(error, "a bad request; field names the first problem"),
            "413": _json(error, "the request is over Lambda's 6 MB"),
            "415": _json(error, "the body is not JSON"),
            "503": _json(error, "the model cannot be loaded; error says why"),
        },
    }}


def openapi_text() -> str:
    spec = json.loads(app.get_openapi_json_schema(title="scengrid", version="1.0.0", description="scengrid runs API"))
    add_predict(spec)
    add_iam_auth(spec)
    return json.dumps(spec, indent=2, sort_keys=True) + "\n"


def add_iam_auth(spec: dict) -> None:
    """Every operation needs a SigV4-signed request (API Gateway's AWS_IAM authorization), and
    may get API Gateway's own 403 before the function sees it."""
    spec["components"]["securitySchemes"] = {"sigv4": SIGV4}
    spec["security"] = [{"sigv4": []}]
    spec["servers"] = [SERVER]
    spec["components"]["schemas"]["GatewayRefusal"] = GATEWAY_REFUSAL
    for operations in spec["paths"].values():
        for operation in operations.values():
            operation["responses"].setdefault("403", _json("#/components/schemas/GatewayRefusal", REFUSED))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--write", action="store_true", help="rewrite the file instead of checking it")
    if parser.parse_args().write:
        SPEC_FILE.write_text(openapi_text())
        return 0
    if not SPEC_FILE.is_file() or SPEC_FILE.read_text() != openapi_text():
        print(f"{SPEC_FILE} is stale; run `make schemas`", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
