import pytest
from pydantic import ValidationError

from scengrid.spec import AUTO_MAX_SHARDS, MAX_SHARDS, GeneratedScenarios, RunSpec


def spec(**kw) -> RunSpec:
    return RunSpec.model_validate({"scenarios": {"count": 20_000, "seed": 1}, **kw})


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ({"shard_size": 0}, "shard_size"),
        ({"shard_size": -5}, "shard_size"),
        ({"shard_size": "big"}, "shard_size"),
        ({"workers": 0}, "workers"),
        ({"scenarios": {"count": 0}}, "scenarios.count"),
        ({"scenarios": {"count": 10, "seed": -1}}, "scenarios.seed"),
        ({"model": {"name": "os.system"}}, "model.name"),
        ({"unexpected": 1}, "unexpected"),
    ],
)
def test_bad_specs_name_the_field(override: dict, field: str) -> None:
    with pytest.raises(ValidationError) as err:
        spec(**override)
    assert field in str(err.value).replace("\n", " ").replace(" ", "") or field.split(".")[0] in str(err.value)


def test_too_many_shards_is_refused_with_advice() -> None:
    with pytest.raises(ValidationError, match="use a larger one"):
        RunSpec(scenarios=GeneratedScenarios(count=MAX_SHARDS + 1), shard_size=1)


def test_auto_shard_size_gives_each_worker_work_and_bounds_the_shard_count() -> None:
    small = spec(workers=2)
    assert small.shard_count() >= 2
    big = RunSpec(scenarios=GeneratedScenarios(count=10_000_000), workers=4)
    assert big.shard_count() <= AUTO_MAX_SHARDS
    tiny = RunSpec(scenarios=GeneratedScenarios(count=150), workers=8)
    assert tiny.shard_count() == 1 and tiny.resolved_shard_size() == 150


def test_explicit_shard_size_is_kept() -> None:
    s = spec(shard_size=3000)
    assert s.resolved_shard_size() == 3000 and s.shard_count() == 7
