"""scripts/deploy, run against stand-ins for the aws, docker and git commands (nothing reaches
AWS): shellcheck finds nothing; a first deploy creates the stack without functions, pushes
every image from the repo root, then deploys with the image tag and refreshes the API stage;
a later deploy skips the bootstrap; teardown keeps the data unless asked to purge it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "deploy"
ACCOUNT, REGION, COMMIT = "123456789012", "eu-west-1", "0123456789ab"
SERVICES = ["sharder", "worker", "collator", "tracker", "inference"]

# One stand-in for aws, docker and git: it logs its arguments and answers what the script asks.
STAND_IN = r'''
import json, os, sys
from pathlib import Path
state = Path(os.environ["STAND_IN_STATE"])
tool, args = os.environ["STAND_IN_TOOL"], sys.argv[1:]
with open(state / "calls.jsonl", "a") as log:
    log.write(json.dumps([tool] + args) + "\n")
def arg(name):
    return args[args.index(name) + 1] if name in args else None
if tool == "git":
    print("0123456789ab" if args[0] == "rev-parse" else "")
elif tool == "docker":
    if args[0] == "login":
        sys.stdin.read()
elif args[:2] == ["sts", "get-caller-identity"]:
    print("123456789012")
elif args[:2] == ["s3api", "head-bucket"]:
    sys.exit(0 if (state / "bucket").exists() else 254)
elif args[:2] == ["s3api", "create-bucket"]:
    (state / "bucket").touch()
elif args[:2] == ["cloudformation", "package"]:
    pass  # would upload the state machine definition and write the packaged template
elif args[:2] == ["cloudformation", "describe-stacks"]:
    if not (state / "stack").exists():
        sys.exit(254)
    query = arg("--query") or ""
    if "OutputKey==" in query:
        key = query.split("OutputKey=='")[1].split("'")[0]
        if key.endswith("RepositoryUri"):
            print(f"123456789012.dkr.ecr.eu-west-1.amazonaws.com/scengrid/{key[:-len('RepositoryUri')].lower()}")
        else:
            print({"RestApiId": "a1b2c3", "ApiStageName": "v1"}[key])
elif args[:2] == ["cloudformation", "deploy"]:
    (state / "stack").touch()
elif args[:2] == ["ecr", "get-login-password"]:
    print("password")
elif args[:2] == ["ecr", "describe-images"]:
    sys.exit(254)
elif args[:2] == ["dynamodb", "describe-table"]:
    sys.exit(0)
elif args[:2] == ["s3api", "list-object-versions"]:
    print('{"Objects": null, "Quiet": true}')
'''


@pytest.fixture
def stand_ins(tmp_path: Path) -> Path:
    bin_dir, state = tmp_path / "bin", tmp_path / "state"
    bin_dir.mkdir()
    state.mkdir()
    program = bin_dir / "stand_in.py"
    program.write_text(STAND_IN)
    for tool in ("aws", "docker", "git"):
        launcher = bin_dir / tool
        launcher.write_text(f'#!/bin/sh\nSTAND_IN_TOOL={tool} exec "{sys.executable}" "{program}" "$@"\n')
        launcher.chmod(0o755)
    return tmp_path


def run(stand_ins: Path, *args: str, **env: str) -> list[list[str]]:
    environment = {
        "PATH": f"{stand_ins / 'bin'}{os.pathsep}{os.environ['PATH']}",
        "HOME": str(stand_ins),
        "AWS_REGION": REGION,
        "STAND_IN_STATE": str(stand_ins / "state"),
        **env,
    }
    result = subprocess.run([str(SCRIPT), *args], env=environment, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    log = stand_ins / "state" / "calls.jsonl"
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def index(calls: list[list[str]], *prefix: str) -> list[int]:
    return [i for i, call in enumerate(calls) if call[: len(prefix)] == list(prefix)]


def value_after(call: list[str], flag: str) -> str:
    return call[call.index(flag) + 1]


def overrides(call: list[str]) -> dict[str, str]:
    start = call.index("--parameter-overrides") + 1
    return dict(item.split("=", 1) for item in call[start:])


def test_shellcheck_finds_nothing() -> None:
    shellcheck = Path(sys.executable).with_name("shellcheck")
    result = subprocess.run([str(shellcheck), str(SCRIPT)], capture_output=True, text=True)
    assert (result.returncode, result.stdout) == (0, "")


def test_a_first_deploy_bootstraps_pushes_every_image_then_deploys_with_its_tag(stand_ins: Path) -> None:
    calls = run(stand_ins, "up", MAX_VCPUS="1024", NAT_PER_AZ="true", MAX_ACTIVE_RUNS="64")
    [package] = index(calls, "aws", "cloudformation", "package")
    deploys = index(calls, "aws", "cloudformation", "deploy")
    builds = index(calls, "docker", "buildx", "build")
    [stage] = index(calls, "aws", "apigateway", "create-deployment")
    assert index(calls, "aws", "s3api", "create-bucket")  # the artifacts bucket, made once
    assert value_after(calls[package], "--template-file") == "infra/template.yaml"
    assert value_after(calls[package], "--s3-bucket") == f"scengrid-deploy-{ACCOUNT}-{REGION}"
    # bootstrap without images, then the images, then the stack with them, then the stage
    assert len(deploys) == 2 and package < deploys[0] < min(builds) and max(builds) < deploys[1] < stage
    first, second = (overrides(calls[i]) for i in deploys)
    assert first["ImageTag"] == "" and second["ImageTag"] == COMMIT
    assert second["EnvName"] == "scengrid" and second["MaxVcpus"] == "1024" and second["NatGatewayPerAz"] == "true"
    assert second["MaxActiveRuns"] == "64" and "MaxScenariosInFlight" not in second  # unset: the template's default
    for i in deploys:  # the template is over CloudFormation's inline limit: it goes through S3
        assert value_after(calls[i], "--template-file") == "dist/template.packaged.yaml"
        assert value_after(calls[i], "--s3-bucket") == f"scengrid-deploy-{ACCOUNT}-{REGION}"
        assert value_after(calls[i], "--capabilities") == "CAPABILITY_IAM"
    pushed = {}
    for i in builds:
        build = calls[i]
        assert build[-1] == "." and "--push" in build and "--provenance=false" in build  # context: the repo root
        assert value_after(build, "--platform") == "linux/amd64"
        pushed[value_after(build, "--file")] = value_after(build, "--tag")
    assert pushed == {
        f"services/{s}/Dockerfile": f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/scengrid/{s}:{COMMIT}" for s in SERVICES
    }
    assert all((ROOT / dockerfile).is_file() for dockerfile in pushed)
    [login] = index(calls, "docker", "login")
    assert login < min(builds) and calls[login][-1] == f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com"
    assert value_after(calls[stage], "--rest-api-id") == "a1b2c3" and value_after(calls[stage], "--stage-name") == "v1"


def test_a_later_deploy_skips_the_bootstrap(stand_ins: Path) -> None:
    (stand_ins / "state" / "stack").touch()
    (stand_ins / "state" / "bucket").touch()
    calls = run(stand_ins, "up", ENV_NAME="risk-dev")
    deploys = index(calls, "aws", "cloudformation", "deploy")
    assert len(deploys) == 1 and overrides(calls[deploys[0]]) == {"EnvName": "risk-dev", "ImageTag": COMMIT}
    assert not index(calls, "aws", "s3api", "create-bucket")
    assert len(index(calls, "docker", "buildx", "build")) == len(SERVICES)


def test_teardown_keeps_the_data(stand_ins: Path) -> None:
    calls = run(stand_ins, "teardown")
    assert index(calls, "aws", "cloudformation", "delete-stack") and index(calls, "aws", "cloudformation", "wait", "stack-delete-complete")
    assert not index(calls, "aws", "dynamodb", "delete-table") and not index(calls, "aws", "s3api", "delete-bucket")


def test_teardown_purge_deletes_tables_and_buckets(stand_ins: Path) -> None:
    (stand_ins / "state" / "bucket").touch()  # every bucket exists for the stand-in
    calls = run(stand_ins, "teardown", "--purge")
    [wait] = index(calls, "aws", "cloudformation", "wait")
    tables = [value_after(calls[i], "--table-name") for i in index(calls, "aws", "dynamodb", "delete-table")]
    buckets = [value_after(calls[i], "--bucket") for i in index(calls, "aws", "s3api", "delete-bucket")]
    assert tables == ["scengrid-runs", "scengrid-shards"]
    assert buckets == [f"scengrid-{kind}-{ACCOUNT}-{REGION}" for kind in ("runs", "logs", "deploy")]
    assert wait < min(index(calls, "aws", "dynamodb", "delete-table"))  # data goes only once the stack is gone


def test_a_model_package_is_built_on_each_pushed_image_that_loads_models_and_deployed_as_their_tag(stand_ins: Path, tmp_path: Path) -> None:
    package = tmp_path / "acme risk"
    (package / "acme_risk").mkdir(parents=True)
    (package / "pyproject.toml").write_text('[project]\nname = "acme-risk"\nversion = "1.2.0"\n')
    (package / "acme_risk" / "__init__.py").write_text("")
    calls = run(stand_ins, "up", MODEL=str(package))
    deploys = index(calls, "aws", "cloudformation", "deploy")
    models = [calls[i] for i in index(calls, "docker", "buildx", "build") if value_after(calls[i], "--file") == "services/worker/model.Dockerfile"]
    registry = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/scengrid"
    tag = overrides(calls[deploys[-1]])["ModelImageTag"]
    assert tag.startswith(f"model-acme-risk-1.2.0-{COMMIT}-") and len(tag) == len(f"model-acme-risk-1.2.0-{COMMIT}-") + 8
    assert {value_after(b, "--tag"): b[-1] for b in models} == {f"{registry}/{s}:{tag}": str(package) for s in ("sharder", "worker", "collator", "tracker")}
    for build in models:  # FROM the image just pushed under the commit's tag
        service = value_after(build, "--tag").split("/")[-1].split(":")[0]
        assert value_after(build, "--build-arg") == f"BASE={registry}/{service}:{COMMIT}" and "--push" in build
    assert max(index(calls, "docker", "buildx", "build")) < deploys[-1]
    (package / "acme_risk" / "__init__.py").write_text("CHANGED = True\n")  # same version, other files: another tag
    again = run(stand_ins, "up", MODEL=str(package))  # the log holds both deploys' calls
    assert overrides(again[index(again, "aws", "cloudformation", "deploy")[-1]])["ModelImageTag"] not in ("", tag)
