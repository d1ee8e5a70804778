import pytest
from pydantic import ValidationError

from scengrid.spec import MAX_SHARDS, GeneratedScenarios, RunSpec


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


def test_auto_is_the_default_and_leaves_the_count_to_the_sharder() -> None:
    s = RunSpec(scenarios=GeneratedScenarios(count=10_000))
    assert s.shard_size == "auto" and s.workers == "auto" and s.shard_count() is None


def test_explicit_shard_size_is_kept() -> None:
    s = spec(shard_size=3000)
    assert s.shard_size == 3000 and s.shard_count() == 7
