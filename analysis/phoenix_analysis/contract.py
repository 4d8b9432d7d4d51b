"""The contract of the verdict engine, as typed models: its input and its result.

The dict is the edge: `analyze(input: dict) -> dict` and `phoenix analyze`
speak the same JSON, in snake_case. Inside Phoenix the typed values cross
instead: the experiment's CRD reuses `Objectives` and `CostModel` (camelCase
on the wire, through their aliases), and the operator reads `Result`.

Shapes and types are checked here, with every problem reported by path.
Values are not judged here: empty arrays, NaN and mismatched lengths are the
engine's business, and it answers them with an Inconclusive verdict instead
of an error.
"""

from __future__ import annotations

import enum
from typing import Annotated, Any, Literal

import pydantic
from pydantic import alias_generators

# JSON has no NaN; a null stands for a missing sample.
Samples = list[float | None]
LabelledSamples = dict[str, Samples]
Decision = Literal["Promote", "Reject", "Inconclusive"]
Fraction = Annotated[float, pydantic.Field(ge=0.0, le=1.0)]
Price = Annotated[float, pydantic.Field(ge=0)]


class _Strict(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid", frozen=True)


class _Shared(pydantic.BaseModel):
    """A part of the contract the CRD embeds: camelCase there, snake_case in `analyze`'s JSON."""

    model_config = pydantic.ConfigDict(
        extra="forbid",
        frozen=True,
        alias_generator=alias_generators.to_camel,
        validate_by_name=True,
        validate_by_alias=True,
    )


class Variant(_Strict):
    active_series: Samples
    datapoints_per_minute: Samples
    cpu_cores: Samples | None = None
    memory_bytes: Samples | None = None
    # of the points the collector received, the fraction it refused or failed to export
    refused_points_ratio: Samples | None = None


class CriticalQuery(_Strict):
    """A query's values per variant: one series, or one series per label set."""

    name: Annotated[str, pydantic.StringConstraints(min_length=1)]
    baseline: Samples | LabelledSamples
    candidate: Samples | LabelledSamples


class Objectives(_Shared):
    min_series_reduction: Fraction = 0.5
    max_query_error: Fraction = 0.01
    max_cpu_increase: Fraction = 0.1
    max_memory_increase: Fraction = 0.1
    # a candidate that refuses or fails to export more of its points than this sheds data
    max_refused_points_ratio: Fraction = 0.001


class CostModel(_Shared):
    usd_per_million_datapoints: Price = 0.10
    usd_per_active_series_month: Price = 0.005
    usd_per_cpu_core_month: Price = 25.0
    usd_per_gib_month: Price = 3.5


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
    """The JSON input, snake_case keys only."""
    try:
        return AnalysisInput.model_validate(data, by_alias=False, by_name=True)
    except pydantic.ValidationError as error:
        problems = []
        for item in error.errors():
            path = ".".join(str(p) for p in item["loc"] if not str(p).startswith(("list[", "dict[", "float")))
            message = "unknown key" if item["type"] == "extra_forbidden" else item["msg"]
            problems.append(f"{path}: {message}" if path else message)
        raise InvalidInput(list(dict.fromkeys(problems))) from None


# The result. Field order is the JSON contract's key order.


class ReasonKind(enum.StrEnum):
    """What a reason says, for code that orders, filters or conditions on it."""

    NO_DECISION = "no-decision"
    SERIES_CLEARS = "series-clears-objective"
    SERIES_BELOW = "series-below-objective"
    SERIES_UNDETERMINED = "series-undetermined"
    QUERY_LOST_LABELS = "query-lost-labels"
    QUERY_DIFFERS = "query-differs"
    QUERY_UNDETERMINED = "query-undetermined"
    QUERY_NO_DATA = "query-no-data"
    QUERIES_AGREE = "queries-agree"
    GUARDRAIL_BREACHED = "guardrail-breached"
    GUARDRAIL_UNDETERMINED = "guardrail-undetermined"
    GUARDRAIL_NOT_MEASURED = "guardrail-not-measured"


# The kinds that prove a Reject; the undetermined ones never stand in a final verdict.
REJECTING = frozenset(
    {ReasonKind.SERIES_BELOW, ReasonKind.QUERY_DIFFERS, ReasonKind.QUERY_LOST_LABELS, ReasonKind.GUARDRAIL_BREACHED}
)
UNDETERMINED = frozenset(
    {ReasonKind.SERIES_UNDETERMINED, ReasonKind.QUERY_UNDETERMINED, ReasonKind.GUARDRAIL_UNDETERMINED}
)


class Reason(_Strict):
    kind: ReasonKind
    text: str


class Interval(_Strict):
    estimate: float
    ci_low: float
    ci_high: float


class QueryFidelity(_Strict):
    name: str
    status: Literal["pass", "fail", "undetermined", "no-data"]
    error: Interval | None
    topk_overlap: float | None
    label_coverage: float | None
    problem: str | None


class Fidelity(_Strict):
    checked: int = 0
    passed: int = 0
    worst_query: str | None = None
    worst_error: float | None = None
    queries: list[QueryFidelity] = pydantic.Field(default_factory=list)


class Guardrail(_Strict):
    name: str
    status: Literal["pass", "breach", "undetermined", "not-measured"]
    # the candidate's increase over the baseline; for refused points, the candidate's own ratio
    increase: Interval | None
    limit: float


class VariantSummary(_Strict):
    active_series: float
    datapoints_per_minute: float
    cpu_cores: float | None
    memory_bytes: float | None
    refused_points_ratio: float | None
    monthly_cost_usd: float


class Result(_Strict):
    decision: Decision = "Inconclusive"
    reasons: list[Reason] = pydantic.Field(default_factory=list)
    series_reduction: Interval | None = None
    datapoint_reduction: Interval | None = None
    monthly_savings_usd: Interval | None = None
    fidelity: Fidelity = pydantic.Field(default_factory=Fidelity)
    guardrails: list[Guardrail] = pydantic.Field(default_factory=list)
    variants: dict[str, VariantSummary] = pydantic.Field(default_factory=dict)
    anomalies: dict[str, list[int]] = pydantic.Field(default_factory=dict)
    samples_used: int = 0
    decided_at_index: int | None = None
    mode: Literal["sequential", "fixed"] = "sequential"
    wilcoxon_p_value: float | None = None
    series_reduction_sequence: dict[str, list[float]] | None = None

    @property
    def reason_texts(self) -> list[str]:
        return [reason.text for reason in self.reasons]

    @property
    def breached_guardrails(self) -> list[str]:
        return [g.name for g in self.guardrails if g.status == "breach"]

    def to_json(self) -> dict[str, Any]:
        """The JSON contract: as the model, with each reason as its text."""
        data = self.model_dump(mode="json")
        data["reasons"] = self.reason_texts
        return data
