"""Domain errors. Each says what is wrong and what to do about it; each maps to a
4xx, a CLI exit code or a ``shard-failed`` event in one place."""

from __future__ import annotations


class ScengridError(Exception):
    """Base of every error scengrid raises on purpose."""

    exit_code = 1


class InvalidInput(ScengridError):
    """Bad user input (a RunSpec, a scenario file, a portfolio). Names the field."""

    exit_code = 2

    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        self.problem = problem
        super().__init__(f"{field}: {problem}")


class UnknownModel(InvalidInput):
    def __init__(self, name: str, available: list[str]) -> None:
        listed = ", ".join(sorted(available)) or "none"
        super().__init__("model.name", f"no model named {name!r} is registered (registered: {listed})")


class RunNotFound(ScengridError):
    exit_code = 4

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        super().__init__(f"no run {run_id!r}; `scengrid runs` lists the runs")


class Conflict(ScengridError):
    """The request contradicts the run's state (retrying a COMPLETE run, reusing an
    Idempotency-Key for another spec)."""

    exit_code = 3


class OverLimit(ScengridError):
    """A limit of the deployment refuses the request for now (too many runs in flight, or too
    many scenarios): nothing was requested, and the same request may pass after
    ``retry_after_s``. ``limit`` is the setting an operator would raise."""

    exit_code = 75  # EX_TEMPFAIL: try again later

    def __init__(self, limit: str, maximum: int, current: int, requested: int, retry_after_s: int, problem: str) -> None:
        self.limit = limit
        self.maximum = maximum
        self.current = current
        self.requested = requested
        self.retry_after_s = retry_after_s
        super().__init__(
            f"{problem}; retry in {retry_after_s} s, or ask the operator to raise {limit} (SCENGRID_{limit.upper()})"
        )


class ModelFailure(ScengridError):
    """The model raised while evaluating a shard."""


class IncompleteRun(ScengridError):
    """The collator found shards that are not COMPLETE or outputs that are missing."""

    def __init__(self, run_id: str, problems: dict[str, str]) -> None:
        self.run_id = run_id
        self.problems = problems  # shard id -> what is wrong with it
        lines = [f"shard {shard}: {problem}" for shard, problem in problems.items()]
        shown = "; ".join(lines[:10]) + (f"; … {len(lines) - 10} more" if len(lines) > 10 else "")
        super().__init__(f"run {run_id} cannot be collated: {shown}")


class ModelUnavailable(ScengridError):
    """The PD model cannot serve: it is missing, fails its checksum, or does not fit the
    feature contract. The message names the model's URI and what to fix."""

    def __init__(self, uri: str, problem: str) -> None:
        self.uri = uri
        self.problem = problem
        super().__init__(f"PD model {uri}: {problem}")


class ModelNotFound(ModelUnavailable):
    pass


class ModelChecksumMismatch(ModelUnavailable):
    pass


class ModelInvalid(ModelUnavailable):
    pass
