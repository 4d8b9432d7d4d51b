"""The stable input contract of `analyze`, as typed models.

The dict is the edge: `analyze(input: dict) -> dict` and `phoenix analyze`
speak the same JSON. Shapes and types are checked here, with every problem
reported by path. Values are not judged here: empty arrays, NaN and
mismatched lengths are the engine's business, and it answers them with an
Inconclusive verdict instead of an error.
"""

from __future__ import annotations

from typing import Annotated, Literal

import pydantic

# JSON has no NaN; a null stands for a missing sample.
Samples = list[float | None]
LabelledSamples = dict[str, Samples]


class _Strict(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid", frozen=True)


class Variant(_Strict):
    active_series: Samples
    datapoints_per_minute: Samples
    cpu_cores: Samples | None = None
    memory_bytes: Samples | None = None


class CriticalQuery(_Strict):
    """A query's values per variant: one series, or one series per label set."""

    name: Annotated[str, pydantic.StringConstraints(min_length=1)]
    baseline: Samples | LabelledSamples
    candidate: Samples | LabelledSamples


class Objectives(_Strict):
    min_series_reduction: Annotated[float, pydantic.Field(ge=0, le=1)] = 0.5
    max_query_error: Annotated[float, pydantic.Field(ge=0, le=1)] = 0.01
    max_cpu_increase: Annotated[float, pydantic.Field(ge=0)] = 0.1
    max_memory_increase: Annotated[float, pydantic.Field(ge=0)] = 0.1


class CostModel(_Strict):
    usd_per_million_datapoints: Annotated[float, pydantic.Field(ge=0)] = 0.10
    usd_per_active_series_month: Annotated[float, pydantic.Field(ge=0)] = 0.005
    usd_per_cpu_core_month: Annotated[float, pydantic.Field(ge=0)] = 25.0
    usd_per_gib_month: Annotated[float, pydantic.Field(ge=0)] = 3.5


class AnalysisInput(_Strict):
    interval_seconds: Annotated[float, pydantic.Field(gt=0)]
    baseline: Variant
    candidate: Variant
    critical_queries: list[CriticalQuery] = pydantic.Field(default_factory=list)
    objectives: Objectives = pydantic.Field(default_factory=Objectives)
    cost_model: CostModel = pydantic.Field(default_factory=CostModel)
    alpha: Annotated[float, pydantic.Field(gt=0, lt=0.5)] = 0.05
    mode: Literal["sequential", "fixed"] = "sequential"


class InvalidInput(ValueError):
    """The input does not have the contract's shape; one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def parse(data: object) -> AnalysisInput:
    try:
        return AnalysisInput.model_validate(data)
    except pydantic.ValidationError as error:
        problems = []
        for item in error.errors():
            path = ".".join(str(p) for p in item["loc"] if not str(p).startswith(("list[", "dict[", "float")))
            message = "unknown key" if item["type"] == "extra_forbidden" else item["msg"]
            problems.append(f"{path}: {message}" if path else message)
        raise InvalidInput(list(dict.fromkeys(problems))) from None
