"""Every way round a hole in the emulator (moto) lives here, each named for what it patches.

tests/integration/test_moto_gaps.py proves each hole is still there in plain moto, so that
a moto upgrade that closes one makes a test fail and the workaround can go.

1. ``batch_parameter_casing``: moto's Step Functions interpreter hands the ASL's PascalCase
   Batch parameters to botocore unconverted (``States.Runtime 'JobName'``). We fill in the
   request/response normalisation that its base class leaves empty, for Batch only.
2. ``batch_jobs_as_processes``: without Docker, moto's Batch cannot run a job. Each job runs
   its real command as a local process (or, with ``--containers``, as a container of the image
   its job definition names: local/container_jobs.py), with the environment AWS Batch would set, and its
   real exit status decides SUCCEEDED or FAILED (moto ignores retry strategies too: the
   local runner applies the job definition's, see local/batch_runner.py).
3. ``job_description``: an array parent whose child failed stays SUBMITTED forever in moto;
   it becomes FAILED once every child has stopped and one failed, as on AWS. DescribeJobs of
   a container job also drops the exit code; it is put back in ``container.exitCode``.
4. ``inline_state_machine_definition``: moto ignores ``DefinitionS3Location`` and
   ``DefinitionSubstitutions``; the template's definition is inlined as ``Fn::Sub``.
6. ``evaluate_cidr_functions``: moto's CloudFormation has no ``Fn::Cidr``; it is evaluated
   here, before the template is handed over.
7. ``mirror_state_machines``: with execution on, moto serves Step Functions from another
   backend than the one CloudFormation created the state machines in, so they are invisible.
   They are read with execution off and created again with it on (same name, definition, role).
5. ``state_machine_rule_targets``: an EventBridge rule with a Step Functions target makes
   moto's PutEvents fail (and retried calls duplicate deliveries). The local runtime swaps
   such targets for an SQS queue and starts the execution from it (see local/launcher.py).
8. ``batch_service_linked_role``: on AWS a compute environment without ``ServiceRole`` uses
   Batch's service-linked role; moto's CloudFormation fails on the missing property
   (``KeyError: 'ServiceRole'``). The role is created in the emulator, as AWS does on first
   use, and named in a copy of the template.
9. ``unmodelled_resource_types``: moto's CloudFormation skips some resource types without
   failing (bucket and queue policies, API Gateway stages, models, request validators, the
   account setting, the Glue database and table of the Athena results, and the Batch
   scheduling policy). Provisioning accepts a skipped resource only if its type is in
   ``UNMODELLED_RESOURCE_TYPES``: none of them is used locally, except the scheduling
   policy, whose weights the local runner reads from the template (18).
10. ``sfn_mock_config``: moto ships Step Functions Local's mocked-integration machinery but
   its MockConfigFile loader is stubbed out and executions never receive a test case.
   ``use_sfn_mock_config`` loads a MockConfigFile (the AWS format); an execution started on
   ``<state machine ARN>#<TestCase>`` then gets that test case's mocked responses (a Throw
   of a ``States.`` error, such as a failed ``.sync`` job's ``States.TaskFailed``, included:
   moto refuses those names), and ``mocked_calls`` lists the parameters each mocked task
   state was called with.
11. ``distributed_map_failure_threshold``: moto's Distributed Map counts a failed item and
   carries on, so the Map succeeds whatever fails inside it. As on AWS, a Map Run whose
   failed items exceed ToleratedFailureCount / ToleratedFailurePercentage (0 by default)
   now fails with ``States.ExceedToleratedFailureThreshold``, which the Map's Catch sees.
12. ``lambda_invoke_runs_no_code``: moto's Lambda runs a function's code only in Docker.
   Without a Docker engine an Invoke answers a "Handled" function error ("error running
   docker"), and with ``{"lambda": {"use_docker": False}}`` it echoes the payload back; either
   way no handler runs. The local stack serves Lambda Invoke itself, with the real handlers
   (local/lambda_endpoint.py), and points the invoking Lambda client at it
   (``scengrid.aws.lambda_invoker``, ``SCENGRID_LAMBDA_ENDPOINT_URL``).
13. ``sync_task_wake_up``: moto's ``.sync`` task states look at their Batch job every 0.5 s
   (a plain sleep), so each stage of a run ended up to half a second after its job. The
   sleep now also ends when a local job stops, and the state sees the job's end at once.
14. ``emulator_warm_up``: moto's Step Functions builds a boto3 client for every task state
   from boto3's default session, and the casing patch (1) reads Batch's service model: the
   first time for each service costs ~0.2 s of loading botocore's models, in the middle of a
   run. ``install`` pays it while the stack starts.
15. ``server_routing``: moto's server finds the backend of every request by listing its own
   package folders from disk and trying its URL patterns, under one lock: 3-7 ms per request,
   whatever the request. The folders are listed once, and each host's backend is remembered.
16. ``event_template_paths``: moto's EventBridge compiles the JSONPath of every input path of
   every target for every event it delivers (a parser built each time): ~14 ms per event with
   the default template. Compiled paths are kept.
17. ``execution_status_events``: on AWS, Step Functions puts a "Step Functions Execution
   Status Change" event (source ``aws.states``) on the account's default bus when a standard
   execution starts (RUNNING) and when it ends (SUCCEEDED, FAILED, TIMED_OUT, ABORTED); moto's
   Step Functions puts none. The emulator's executions now put them, with AWS's detail
   fields, so that the template's own rule routes them (to the tracker, which records each
   run's execution ARN, by which a cancel stops the execution).
18. ``batch_share_identifier``: moto's SubmitJob drops ``shareIdentifier`` (and
   ``schedulingPriorityOverride``), DescribeJobs shows neither, and its CloudFormation skips the
   fair-share ``AWS::Batch::SchedulingPolicy`` (see 9). And its Step Functions Batch
   integration removes both from a ``submitJob`` task's parameters before the call (its list of
   supported parameters lacks them; AWS's integration passes them). A job now keeps the share
   it was submitted under, array children their parent's, and DescribeJobs shows it; the state
   machine's tasks pass it; the local runner shares the cores between shares by the template's
   policy (local/fair_share.py).
19. ``dynamodb_serial_writes``: moto's DynamoDB takes no lock. A conditional write checks
   its condition and then writes, and a transaction checks its conditions, applies its writes
   and, when cancelled, puts back a copy of each table taken when it began: concurrent
   requests (the server answers each on its own thread) interleave, so two admissions can
   both take the last slot, and a cancelled transaction can undo another's write. DynamoDB
   makes each item write atomic and transactions serializable; here every write operation
   (put, update, delete, batch write, transaction) holds one lock. And moto's transaction
   deep-copies every table it touches before it starts (the runs and shards tables, whole,
   for each tracker event: a cost that grows with every run kept). A transaction now keeps
   a copy of the items it writes only, and puts those back when it is cancelled.
"""

from __future__ import annotations

import copy
import functools
import ipaddress
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from pydantic import BaseModel

_installed = False
_install_lock = threading.Lock()

# A Batch job's command, environment and id, run to completion: returns the exit code.
JobRunner = Callable[["LocalJob"], int]


@dataclass(frozen=True)
class LocalJob:
    """What the local runner needs of a Batch job."""

    job_id: str
    name: str
    command: list[str]
    environment: dict[str, str]
    should_stop: Callable[[], bool]  # TerminateJob was called
    on_start: Callable[[], None]  # an attempt got a slot and is RUNNING
    retry_strategy: dict[str, Any]  # the job definition's, as AWS Batch would apply it
    image: str = ""  # the job definition's (a container launcher runs it)
    vcpus: float | None = None  # the job's VCPU and MEMORY (MiB) resource requirements
    memory_mib: int | None = None
    share: str = ""  # the fair-share identifier it was submitted under (18)


_runner: JobRunner | None = None


# ---------------------------------------------------------------- 1. batch_parameter_casing
@functools.lru_cache(maxsize=1)
def _batch_client_meta():  # botocore ClientMeta  # noqa: ANN202
    """Batch's service model, read once: a client is built only for it."""
    return boto3.session.Session().client("batch", region_name="us-east-1").meta


def _batch_operation(action: str):  # botocore OperationModel
    meta = _batch_client_meta()
    api_name = meta.method_to_api_mapping.get(action, action[:1].upper() + action[1:])
    return meta.service_model.operation_model(api_name)


def _patch_batch_parameter_casing() -> None:
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_batch import (
        StateTaskServiceBatch,
    )

    def _normalise_parameters(self, parameters, boto_service_name=None, service_action_name=None):  # noqa: ANN001
        action = service_action_name or self._get_boto_service_action()
        self._to_boto_request(parameters, _batch_operation(action).input_shape)

    def _normalise_response(self, response, boto_service_name=None, service_action_name=None):  # noqa: ANN001
        action = service_action_name or self._get_boto_service_action()
        self._from_boto_response(response, _batch_operation(action).output_shape)

    original_eval = StateTaskServiceBatch._eval_service_task

    def _eval_service_task(self, env, resource_runtime_part, normalised_parameters, state_credentials):  # noqa: ANN001
        original_eval(self, env, resource_runtime_part, normalised_parameters, state_credentials)
        self._normalise_response(env.stack[-1])  # the submission output: JobId, JobName, JobArn

    StateTaskServiceBatch._normalise_parameters = _normalise_parameters
    StateTaskServiceBatch._normalise_response = _normalise_response
    StateTaskServiceBatch._eval_service_task = _eval_service_task


# ---------------------------------------------------------------- 2. batch_jobs_as_processes
def _job_environment(job: Any) -> dict[str, str]:
    definition_env = job.job_definition.container_properties.get("environment", [])
    override_env = job.container_overrides.get("environment", [])
    env = {e["name"]: e["value"] for e in definition_env}
    env.update({e["name"]: e["value"] for e in override_env})
    env["AWS_BATCH_JOB_ID"] = job.job_id
    env["AWS_BATCH_JQ_NAME"] = job.job_queue.name
    if job.job_queue.environments:  # the first of the queue's compute environments takes it (Spot, here)
        env["AWS_BATCH_CE_NAME"] = job.job_queue.environments[0].name
    index = job.array_properties.get("index")
    if index is not None:
        env["AWS_BATCH_JOB_ARRAY_INDEX"] = str(index)
    return env


def _resource(job: Any, kind: str) -> float | None:
    """The job's VCPU or MEMORY requirement: its container overrides', else its definition's."""
    for requirements in (
        job.container_overrides.get("resourceRequirements") or [],
        (job.job_definition.container_properties or {}).get("resourceRequirements") or [],
    ):
        for requirement in requirements:
            if str(requirement.get("type", "")).upper() == kind:
                return float(requirement["value"])
    return None


def _patch_batch_jobs_as_processes() -> None:
    from datetime import datetime

    from moto.batch.models import Job
    from moto.batch.utils import JobStatus

    def run(self: Job) -> None:
        try:
            def started() -> None:
                self.job_started_at = datetime.now()
                self.status = JobStatus.RUNNING
                self._start_attempt()

            command = self._add_parameters_to_command(self._get_container_property("command", []))
            local = LocalJob(
                self.job_id,
                self.job_name,
                list(command),
                _job_environment(self),
                lambda: self.stop,
                started,
                self.job_definition.retry_strategy or {},
                image=self._get_container_property("image", ""),
                vcpus=_resource(self, "VCPU"),
                memory_mib=int(memory) if (memory := _resource(self, "MEMORY")) else None,
                share=getattr(self, "share_identifier", None) or "",
            )
            self.status = JobStatus.RUNNABLE
            assert _runner is not None, "moto_gaps.install() sets the job runner"
            self.exit_code = _runner(local)
            self._mark_stopped(success=self.exit_code == 0 and not self.stop)
        except Exception as exc:  # a job must never hang SUBMITTED: fail it, say why
            self.job_stopped_reason = f"local runner: {type(exc).__name__}: {exc}"
            self._mark_stopped(success=False)
        _notify_job_stopped()

    Job.run = run


# ---------------------------------------------------------------- 13. sync_task_wake_up
_job_stopped = threading.Condition()
_stops = 0  # jobs stopped so far (under _job_stopped)
_stops_seen = threading.local()  # by each .sync loop's thread, when its last sleep ended


def _notify_job_stopped() -> None:
    global _stops
    with _job_stopped:
        _stops += 1
        _job_stopped.notify_all()


class SleepUntilAJobStops:
    """Stands in for the ``time`` module in moto's ``.sync`` loop: its sleep also ends when a
    local Batch job stops, or does not start when one stopped while the loop was looking
    (every other attribute is the real module's)."""

    @staticmethod
    def sleep(seconds: float) -> None:
        with _job_stopped:
            if getattr(_stops_seen, "count", _stops) == _stops:
                _job_stopped.wait(seconds)
            _stops_seen.count = _stops

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


def _patch_sync_task_wake_up() -> None:
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import state_task_service_callback

    state_task_service_callback.time = SleepUntilAJobStops()


# ---------------------------------------------------------------- 3. job_description
def _patch_job_description() -> None:
    from datetime import datetime

    from moto.batch.models import Job
    from moto.batch.utils import JobStatus

    original_describe = Job.describe

    def describe(self: Job) -> dict[str, Any]:
        children = self._child_jobs
        if children and not self.job_stopped:
            statuses = [c.status for c in children]
            if all(s in (JobStatus.SUCCEEDED, JobStatus.FAILED) for s in statuses) and JobStatus.FAILED in statuses:
                self.job_stopped = True
                self.job_stopped_at = datetime.now()
                self.job_stopped_reason = "one or more array children failed"
                self.status = JobStatus.FAILED
        described = original_describe(self)
        if self.exit_code is not None and isinstance(described.get("container"), dict):
            described["container"]["exitCode"] = self.exit_code
        return described

    Job.describe = describe


# ---------------------------------------------------------------- 18. batch_share_identifier
_submitting = threading.local()  # the SubmitJob request being served, in its server thread


def _patch_batch_share_identifier() -> None:
    from moto.batch.models import Job
    from moto.batch.responses import BatchResponse

    original_submit, original_init, original_describe = BatchResponse.submitjob, Job.__init__, Job.describe

    def submitjob(self: BatchResponse) -> str:
        # SubmitJob builds the job and its array children in this thread, before any of them runs
        _submitting.share = self._get_param("shareIdentifier")
        _submitting.priority = self._get_param("schedulingPriorityOverride")
        try:
            return original_submit(self)
        finally:
            _submitting.share = _submitting.priority = None

    def init(self: Job, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        self.share_identifier = getattr(_submitting, "share", None)
        self.scheduling_priority = getattr(_submitting, "priority", None)

    def describe(self: Job) -> dict[str, Any]:
        described = original_describe(self)
        if getattr(self, "share_identifier", None):
            described["shareIdentifier"] = self.share_identifier
        if getattr(self, "scheduling_priority", None) is not None:
            described["schedulingPriority"] = self.scheduling_priority
        return described

    BatchResponse.submitjob = submitjob
    Job.__init__ = init
    Job.describe = describe
    _sfn_batch_submit_parameters().update(("ShareIdentifier", "SchedulingPriorityOverride"))


def _sfn_batch_submit_parameters() -> set[str]:
    """The parameters moto's Step Functions passes on to Batch's SubmitJob (it drops the rest)."""
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import state_task_service_batch

    return state_task_service_batch._SUPPORTED_API_PARAM_BINDINGS["submitjob"]


# ---------------------------------------------------------------- 4. inline_state_machine_definition
def inline_state_machine_definition(template: dict[str, Any], template_dir: Path) -> dict[str, Any]:
    """A copy of the template whose state machines carry their definition as ``Fn::Sub``."""
    out = copy.deepcopy(template)
    for resource in out.get("Resources", {}).values():
        if resource.get("Type") != "AWS::StepFunctions::StateMachine":
            continue
        props = resource["Properties"]
        location = props.pop("DefinitionS3Location", None)
        substitutions = props.pop("DefinitionSubstitutions", {})
        if isinstance(location, str):
            body = (template_dir / location).read_text()
            json.loads(body)  # a broken ASL file fails here, by name, not deep inside moto
            props["DefinitionString"] = {"Fn::Sub": [body, substitutions]}
    return out


# ---------------------------------------------------------------- 6. evaluate_cidr_functions
def evaluate_cidr_functions(template: dict[str, Any], parameters: dict[str, str] | None = None) -> dict[str, Any]:
    """A copy of the template with each ``Fn::Cidr`` replaced by its list of CIDRs.

    The address block may be a literal or a ``Ref`` to a parameter (its value, else its default)."""
    values = {name: p.get("Default") for name, p in template.get("Parameters", {}).items()}
    values.update(parameters or {})

    def resolve(node: Any) -> Any:
        if isinstance(node, list):
            return [resolve(x) for x in node]
        if not isinstance(node, dict):
            return node
        if set(node) == {"Fn::Cidr"}:
            block, count, host_bits = node["Fn::Cidr"]
            if isinstance(block, dict):
                block = values[block["Ref"]]
            network = ipaddress.ip_network(block)
            subnets = network.subnets(new_prefix=network.max_prefixlen - int(host_bits))
            return [str(next(subnets)) for _ in range(int(count))]
        return {k: resolve(v) for k, v in node.items()}

    return resolve(copy.deepcopy(template))


# ---------------------------------------------------------------- 5. state_machine_rule_targets
def retarget_state_machine_rules(events: Any, bus: str, queue_arn: str) -> list[str]:
    """Replace each Step Functions target on ``bus`` by the local launch queue; returns the rules."""
    changed = []
    for rule in events.list_rules(EventBusName=bus)["Rules"]:
        targets = events.list_targets_by_rule(Rule=rule["Name"], EventBusName=bus)["Targets"]
        sfn = [t for t in targets if ":states:" in t["Arn"]]
        if not sfn:
            continue
        events.remove_targets(Rule=rule["Name"], EventBusName=bus, Ids=[t["Id"] for t in sfn])
        events.put_targets(
            Rule=rule["Name"], EventBusName=bus, Targets=[{"Id": "local-launch", "Arn": queue_arn}]
        )
        changed.append(rule["Name"])
    return changed


# ---------------------------------------------------------------- 7. mirror_state_machines
def mirror_state_machines(sfn: Any, set_execution: Callable[[bool], None]) -> list[str]:
    """Make the stack's state machines visible to the executing backend; returns their ARNs."""
    set_execution(False)
    machines = []
    for listed in sfn.list_state_machines()["stateMachines"]:
        found = sfn.describe_state_machine(stateMachineArn=listed["stateMachineArn"])
        machines.append((found["name"], found["definition"], found["roleArn"], found.get("type", "STANDARD")))
    set_execution(True)
    return [
        sfn.create_state_machine(name=name, definition=definition, roleArn=role, type=kind)["stateMachineArn"]
        for name, definition, role, kind in machines
    ]


# ---------------------------------------------------------------- 8. batch_service_linked_role
BATCH_SERVICE = "batch.amazonaws.com"


def use_batch_service_linked_role(template: dict[str, Any], iam: Any) -> dict[str, Any]:
    """A copy of the template whose compute environments without a ServiceRole name Batch's
    service-linked role, created in the emulator if it is not there yet."""
    out = copy.deepcopy(template)
    environments = [
        r["Properties"]
        for r in out.get("Resources", {}).values()
        if r.get("Type") == "AWS::Batch::ComputeEnvironment" and "ServiceRole" not in r.get("Properties", {})
    ]
    if not environments:
        return out
    prefix = f"/aws-service-role/{BATCH_SERVICE}/"
    existing = iam.list_roles(PathPrefix=prefix)["Roles"]
    arn = existing[0]["Arn"] if existing else iam.create_service_linked_role(AWSServiceName=BATCH_SERVICE)["Role"]["Arn"]
    for properties in environments:
        properties["ServiceRole"] = arn
    return out


# ---------------------------------------------------------------- 9. unmodelled_resource_types
UNMODELLED_RESOURCE_TYPES = frozenset(
    {
        "AWS::S3::BucketPolicy",
        "AWS::SQS::QueuePolicy",
        "AWS::ApiGateway::Account",
        "AWS::ApiGateway::Model",
        "AWS::ApiGateway::RequestValidator",
        "AWS::ApiGateway::Stage",
        "AWS::Glue::Database",  # results as SQL: Athena on AWS, DuckDB locally (scengrid results --sql)
        "AWS::Glue::Table",
        "AWS::Batch::SchedulingPolicy",  # the local runner applies its weights itself (18)
    }
)


def skipped_resources(template: dict[str, Any], created: set[str]) -> dict[str, str]:
    """Unconditional resources of the template the emulator did not create: logical id → type."""
    return {
        name: resource["Type"]
        for name, resource in template.get("Resources", {}).items()
        if name not in created and "Condition" not in resource
    }


# ---------------------------------------------------------------- 10. sfn_mock_config
class _MockedThrow(BaseModel):
    Error: str
    Cause: str = ""


class _MockedResponse(BaseModel):
    """One entry of ``MockedResponses``: ``Return`` (the task's output) or ``Throw``."""

    Return: Any = None
    Throw: _MockedThrow | None = None


class _MockTestCases(BaseModel):
    TestCases: dict[str, dict[str, str]]  # test case → state name → mocked response name


class MockConfigFile(BaseModel):
    """Step Functions Local's MockConfigFile format (the shape moto's stubbed loader expects)."""

    StateMachines: dict[str, _MockTestCases]
    MockedResponses: dict[str, dict[str, _MockedResponse]]


@dataclass(frozen=True)
class MockedCall:
    state: str
    parameters: dict[str, Any]


_mock_config: MockConfigFile | None = None
_mocked_calls: list[MockedCall] = []
_starting = threading.local()  # the test case of the execution being started on this thread
_sfn_mocks_installed = False


def _mock_test_case(state_machine: str, test_case: str) -> Any:
    from moto.stepfunctions.parser.mocking import mock_config

    config = _mock_config
    if config is None or test_case not in config.StateMachines.get(state_machine, _MockTestCases(TestCases={})).TestCases:
        raise ValueError(f"no mock test case {test_case!r} for state machine {state_machine!r}")
    states = config.StateMachines[state_machine].TestCases[test_case]
    return mock_config.MockTestCase(
        state_machine_name=state_machine,
        test_case_name=test_case,
        state_mocked_responses_list=[
            mock_config.StateMockedResponses(state, name, _mocked_responses(config, name)) for state, name in states.items()
        ],
    )


def _mocked_responses(config: MockConfigFile, name: str) -> list[Any]:
    from moto.stepfunctions.parser.mocking import mock_config

    responses = []
    for attempts, response in config.MockedResponses[name].items():
        first, _, last = attempts.partition("-")
        start, end = int(first), int(last or first)
        if response.Throw is not None:
            responses.append(mock_config.MockedResponseThrow(start, end, response.Throw.Error, response.Throw.Cause))
        else:
            responses.append(mock_config.MockedResponseReturn(start, end, response.Return))
    return responses


def _install_sfn_mock_config() -> None:
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.state_task import StateTask
    from moto.stepfunctions.parser.backend.execution import Execution
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend

    original_start = StepFunctionsParserBackend.start_execution
    original_worker = Execution._get_start_execution_worker
    original_parameters = StateTask._eval_parameters

    def start_execution(self, state_machine_arn, name=None, execution_input=None, trace_header=None):  # noqa: ANN001, ANN202
        arn, _, test_case = state_machine_arn.partition("#")
        _starting.test_case = _mock_test_case(self.describe_state_machine(arn).name, test_case) if test_case else None
        try:
            return original_start(self, arn, name, execution_input, trace_header)
        finally:
            _starting.test_case = None

    def start_worker(self):  # noqa: ANN001, ANN202
        worker = original_worker(self)
        worker._mock_test_case = getattr(_starting, "test_case", None)
        return worker

    def eval_parameters(self, env):  # noqa: ANN001, ANN202
        parameters = original_parameters(self, env)
        if env.is_mocked_mode():
            _mocked_calls.append(MockedCall(self.name, copy.deepcopy(parameters)))
        return parameters

    StepFunctionsParserBackend.start_execution = start_execution
    Execution._get_start_execution_worker = start_worker
    StateTask._eval_parameters = eval_parameters
    _throw_states_errors()


def _throw_states_errors() -> None:
    """A mocked Throw of ``States.TaskFailed`` (what a failed ``.sync`` job raises) is refused
    by moto ("Custom Error Names MUST NOT begin with 'States.'"); throw it as the States error."""
    from moto.stepfunctions.parser.api import HistoryEventType, TaskFailedEventDetails
    from moto.stepfunctions.parser.asl.component.common.error_name.custom_error_name import CustomErrorName
    from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
        FailureEvent,
        FailureEventException,
    )
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName
    from moto.stepfunctions.parser.asl.component.state.exec.state_task import mock_eval_utils
    from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails

    def throw(env, mocked_response):  # noqa: ANN001, ANN202
        error = mocked_response.error
        name = StatesErrorName.from_name(error) if error.startswith("States.") else CustomErrorName(error)
        details = EventDetails(taskFailedEventDetails=TaskFailedEventDetails(error=error, cause=mocked_response.cause))
        raise FailureEventException(FailureEvent(env=env, error_name=name, event_type=HistoryEventType.TaskFailed, event_details=details))

    mock_eval_utils._eval_mocked_response_throw = throw


def use_sfn_mock_config(config: dict[str, Any] | MockConfigFile) -> None:
    """Serve mocked responses from ``config`` (MockConfigFile format) to executions started
    on ``<state machine ARN>#<TestCase>``; other executions are untouched."""
    global _mock_config, _sfn_mocks_installed
    with _install_lock:
        _mock_config = config if isinstance(config, MockConfigFile) else MockConfigFile.model_validate(config)
        if not _sfn_mocks_installed:
            _install_sfn_mock_config()
            _sfn_mocks_installed = True


def mocked_calls() -> list[MockedCall]:
    """Every mocked task state call so far: the state's name and its evaluated parameters."""
    return list(_mocked_calls)


# ---------------------------------------------------------------- 11. distributed_map_failure_threshold
def _exceeds_tolerance(failed: int, total: int, count: int, percentage: float) -> bool:
    """AWS's rule: with no threshold (both 0) any failure fails the Map Run; otherwise the
    thresholds that are set (non-zero) are each a limit not to exceed."""
    if not count and not percentage:
        return failed > 0
    return bool((count and failed > count) or (percentage and total and 100 * failed / total > percentage))


def _patch_distributed_map_failure_threshold() -> None:
    from moto.stepfunctions.parser.api import ExecutionFailedEventDetails, HistoryEventType
    from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
        FailureEvent,
        FailureEventException,
    )
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import StatesErrorNameType
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration.distributed_iteration_component import (
        DistributedIterationComponent,
    )
    from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails

    original_map_run = DistributedIterationComponent._map_run

    def _map_run(self, env, eval_input):  # noqa: ANN001, ANN202
        original_map_run(self, env, eval_input)
        record = eval_input.map_run_record
        counts = record.item_counter
        failed, total = counts.failed.get() + counts.timed_out.get(), counts.total.get()
        if _exceeds_tolerance(failed, total, record.tolerated_failure_count, record.tolerated_failure_percentage):
            error = StatesErrorNameType.StatesExceedToleratedFailureThreshold.to_name()
            cause = f"The specified tolerated failure threshold was exceeded: {failed} of {total} items failed"
            details = EventDetails(executionFailedEventDetails=ExecutionFailedEventDetails(error=error, cause=cause))
            raise FailureEventException(FailureEvent(
                env=env,
                error_name=StatesErrorName(typ=StatesErrorNameType.StatesExceedToleratedFailureThreshold),
                event_type=HistoryEventType.ExecutionFailed,
                event_details=details,
            ))

    DistributedIterationComponent._map_run = _map_run


# ---------------------------------------------------------------- 14. emulator_warm_up
WARMED_SERVICES = ("batch", "s3", "events")  # what the state machine's task states call


def _warm_up() -> None:
    from moto.stepfunctions.parser.asl.utils.boto_client import boto_client_for

    for service in WARMED_SERVICES:
        boto_client_for(region="us-east-1", service=service)
    for action in ("submit_job", "describe_jobs"):
        _batch_operation(action).input_shape, _batch_operation(action).output_shape  # noqa: B018


# ---------------------------------------------------------------- 15. server_routing
def _patch_server_routing() -> None:
    from moto import backends
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    modules = tuple(backends.list_of_moto_modules())  # moto's own folders do not change while it runs
    backends.list_of_moto_modules = lambda: modules
    original = DomainDispatcherApplication.get_backend_for_host
    routes: dict[str | None, Any] = {}

    def get_backend_for_host(self, host):  # noqa: ANN001, ANN202 - moto calls it under its lock
        if host not in routes:
            routes[host] = original(self, host)
        return routes[host]

    DomainDispatcherApplication.get_backend_for_host = get_backend_for_host


# ---------------------------------------------------------------- 16. event_template_paths
def _patch_event_template_paths() -> None:
    import jsonpath_ng.ext

    jsonpath_ng.ext.parse = functools.lru_cache(maxsize=1024)(jsonpath_ng.ext.parse)  # compiled paths are reusable


# ---------------------------------------------------------------- 19. dynamodb_serial_writes
_DYNAMODB_WRITES = ("put_item", "update_item", "delete_item", "batch_write_item", "transact_write_items")
_dynamodb_writing = threading.RLock()


class _TablesKeptInPlace:
    """Stands in for the ``copy`` module in moto's DynamoDB models: a table is not copied (the
    transaction keeps its items instead); anything else is, as before."""

    @staticmethod
    def deepcopy(value: Any, memo: Any = None) -> Any:
        from moto.dynamodb.models.table import Table

        return value if isinstance(value, Table) else copy.deepcopy(value, memo)

    def __getattr__(self, name: str) -> Any:
        return getattr(copy, name)


def _written_items(backend: Any, transact_items: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any], Any]]:
    """(table, key, the item's attributes now or None) of each item the transaction writes."""
    kept: dict[tuple[str, str], tuple[str, dict[str, Any], Any]] = {}
    for entry in transact_items:
        for kind, op in entry.items():
            table = backend.tables.get(op.get("TableName")) if isinstance(op, dict) else None
            if kind == "ConditionCheck" or table is None:
                continue
            attrs = op.get("Item" if kind == "Put" else "Key") or {}
            key = {k: attrs[k] for k in (table.hash_key_attr, table.range_key_attr) if k and k in attrs}
            try:
                current = backend.get_item(op["TableName"], key)
            except Exception:  # noqa: BLE001 - a malformed key: the transaction refuses it before any write
                continue
            attributes = copy.deepcopy(current.to_json()["Attributes"]) if current is not None else None
            kept.setdefault((op["TableName"], json.dumps(key, sort_keys=True)), (op["TableName"], key, attributes))
    return list(kept.values())


def _patch_dynamodb_serial_writes() -> None:
    from moto.dynamodb import models
    from moto.dynamodb.models import DynamoDBBackend

    models.copy = _TablesKeptInPlace()
    transact = DynamoDBBackend.transact_write_items

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        before = _written_items(self, transact_items)
        try:
            transact(self, transact_items)
        except Exception:
            for table, key, attributes in before:  # cancelled: what it wrote is put back
                if table not in self.tables:
                    continue
                if attributes is not None:
                    self.put_item(table, attributes)
                elif self.get_item(table, key) is not None:
                    self.delete_item(table, key)
            raise

    DynamoDBBackend.transact_write_items = transact_write_items

    def serial(write: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(write)
        def one_at_a_time(*args: Any, **kwargs: Any) -> Any:
            with _dynamodb_writing:
                return write(*args, **kwargs)

        return one_at_a_time

    for name in _DYNAMODB_WRITES:
        setattr(DynamoDBBackend, name, serial(getattr(DynamoDBBackend, name)))


# ---------------------------------------------------------------- 17. execution_status_events
def _epoch_ms(when: Any) -> int | None:
    return None if when is None else int(when.timestamp() * 1000)


def execution_status_entry(execution: Any, status: str) -> dict[str, Any]:
    """The PutEvents entry of Step Functions' status change of ``execution`` (moto's parser
    Execution) to ``status``, with the detail fields AWS sends."""
    from scengrid.events import EXECUTION_STATUS_CHANGE, EXECUTION_STATUS_SOURCE

    ended = status != "RUNNING"
    output = json.dumps(execution.output, separators=(",", ":")) if status == "SUCCEEDED" else None
    detail = {
        "executionArn": execution.exec_arn,
        "stateMachineArn": execution.state_machine_arn,
        "name": execution.name,
        "status": status,
        "startDate": _epoch_ms(execution.start_date),
        "stopDate": _epoch_ms(execution.stop_date) if ended else None,
        "input": execution.execution_input,
        "inputDetails": {"included": True},
        "output": output,
        "outputDetails": {"included": True} if output is not None else None,
        "error": execution.error if ended else None,
        "cause": execution.cause if ended else None,
    }
    return {
        "Source": EXECUTION_STATUS_SOURCE,
        "DetailType": EXECUTION_STATUS_CHANGE,
        "Detail": json.dumps(detail),
        "Resources": [execution.exec_arn],
    }


def _patch_execution_status_events() -> None:
    from moto.events.models import events_backends
    from moto.stepfunctions.parser.api import StateMachineType
    from moto.stepfunctions.parser.backend.execution import BaseExecutionWorkerCommunication, Execution

    def put(execution: Execution, status: str) -> None:
        # as on AWS: standard executions only (not express, sync or TestState ones)
        if type(execution) is not Execution or execution.sm_type != StateMachineType.STANDARD:
            return
        bus = events_backends[execution.account_id][execution.region_name]
        bus.put_events([execution_status_entry(execution, status)])  # no EventBusName: the default bus

    original_start = Execution.start
    original_terminated = BaseExecutionWorkerCommunication.terminated

    def start(self: Execution) -> None:
        put(self, "RUNNING")  # before the worker thread starts, so that it comes before the end
        original_start(self)

    def terminated(self: BaseExecutionWorkerCommunication) -> None:
        original_terminated(self)  # the execution's final status is set here
        put(self.execution, self.execution.status)

    Execution.start = start
    BaseExecutionWorkerCommunication.terminated = terminated


def install(runner: JobRunner) -> None:
    """Apply the in-process patches (1–3, 11, 13–19) once; ``runner`` runs each Batch job."""
    global _installed, _runner
    with _install_lock:
        _runner = runner
        if _installed:
            return
        _patch_batch_parameter_casing()
        _patch_batch_jobs_as_processes()
        _patch_job_description()
        _patch_batch_share_identifier()
        _patch_distributed_map_failure_threshold()
        _patch_sync_task_wake_up()
        _patch_server_routing()
        _patch_event_template_paths()
        _patch_execution_status_events()
        _patch_dynamodb_serial_writes()
        _warm_up()
        _installed = True
