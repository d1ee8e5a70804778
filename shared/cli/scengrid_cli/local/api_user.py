"""Who may call the local API: the stack's own IAM user in the emulator, with an access key and
an inline policy that grants ``execute-api:Invoke`` on the stack's API (what a user needs on
AWS), and its key as an AWS shared-credentials profile that botocore's chain can load.

The policy names the stack's REST API (the template's ``<stack>-api``) when the template created
one; without images (the local stack) it creates none, the local adapter serves the API, and
the policy names every API of the account (``…:*/*``)."""

from __future__ import annotations

import configparser
import json
import os
from pathlib import Path
from typing import Any

from scengrid.aws import client
from scengrid_cli.local.sigv4 import Caller

PROFILE = "scengrid-local"
POLICY_NAME = "invoke-api"


def create_api_user(stack_name: str, region: str) -> Caller:
    """Create the user ``<stack>-local``, allow it to invoke the stack's API, give it a key."""
    iam = client("iam")
    account = client("sts").get_caller_identity()["Account"]
    # by name, not from the stack's outputs: describing the stack again makes the emulator
    # re-read the resource types it does not model, and warn about each on the user's terminal
    apis = client("apigateway").get_rest_apis(limit=500)["items"]
    api_id = next((api["id"] for api in apis if api["name"] == f"{stack_name}-api"), "*")
    name = f"{stack_name}-local"
    user = iam.create_user(UserName=name)["User"]
    policy = invoke_policy(f"arn:aws:execute-api:{region}:{account}:{api_id}/*")
    iam.put_user_policy(UserName=name, PolicyName=POLICY_NAME, PolicyDocument=json.dumps(policy))
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return Caller(key["AccessKeyId"], key["SecretAccessKey"], account, user["UserId"], user["Arn"])


def invoke_policy(resource: str) -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [{"Sid": "CallTheApi", "Effect": "Allow", "Action": "execute-api:Invoke", "Resource": resource}],
    }


def write_profile(path: Path, caller: Caller, profile: str = PROFILE) -> Path:
    """The caller's key as ``[profile]`` of a shared-credentials file, readable by its owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = f"[{profile}]\naws_access_key_id = {caller.access_key_id}\naws_secret_access_key = {caller.secret_access_key}\n"
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as out:
        os.fchmod(out.fileno(), 0o600)  # also when the file was there before
        out.write(text)
    return path


def identity_record(caller: Caller, credentials_file: Path, profile: str = PROFILE) -> dict[str, str]:
    """What a state file keeps of the caller: who it is and where its key is, not the secret."""
    return {
        "access_key_id": caller.access_key_id,
        "account_id": caller.account_id,
        "user_id": caller.user_id,
        "user_arn": caller.user_arn,
        "profile": profile,
        "credentials_file": str(credentials_file),
    }


def caller_from_record(record: dict[str, str]) -> Caller:
    """The caller a state file describes, with the secret read from its profile."""
    profiles = configparser.ConfigParser()
    profiles.read(record["credentials_file"])
    secret = profiles.get(record["profile"], "aws_secret_access_key", fallback=None)
    if secret is None:
        raise FileNotFoundError(f"no profile {record['profile']} in {record['credentials_file']}: run `scengrid local bootstrap` again")
    return Caller(record["access_key_id"], secret, record["account_id"], record["user_id"], record["user_arn"])
