"""The contract of the verdict engine, as typed models: its input and its result.

The dict is the edge: `analyze(input: dict) -> dict` and `phoenix analyze`
speak the same JSON, with camelCase keys like every other output of Phoenix
(`run -o json`, the CRDs' status). Inside Phoenix the typed values cross
instead, under their Python names: the experiment's CRD reuses `Objectives`
and `CostModel`, and the operator reads `Result`.

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
    """camelCase on the wire (JSON and the CRDs that embed a part), Python names inside."""

    model_config = pydantic.ConfigDict(
        use_attribute_docstrings=True,
        extra="forbid",
        frozen=True,
        alias_generator=alias_generators.to_camel,
        validate_by_name=True,
        validate_by_alias=True,
    )


class Variant(_Strict):
    """One variant's figures, one value per sample, null where a sample is missing."""

    active_series: Samples
    """Series the variant exported."""
    datapoints_per_minute: Samples
    """Datapoints it exported per minute."""
    cpu_cores: Samples | None = None
    """Its collectors' CPU, in cores; a Promote needs it on both variants."""
    memory_bytes: Samples | None = None
    """Its collectors' memory (RSS), in bytes; a Promote needs it on both variants."""
    refused_points_ratio: Samples | None = None
    """Of the points the collector received, the fraction it refused or failed to export."""
    accepted_points: Samples | None = None
    """The collector's count of points its receivers accepted, as read at each sample: the pairing check."""
    uptime_seconds: Samples | None = None
    """The collector process's uptime: it falls when the collector restarts."""
    load_batches_sent: Samples | None = None
    """The LoadSim's count of batches this variant's collector accepted, as read at each sample."""
    load_batches_failed: Samples | None = None
    """The LoadSim's count of batches it could not deliver to this variant (send errors and drops)."""
    edge_points: Samples | None = None
    """The fewest series of the critical queries with a point in the first or the last step of their windows:
    it drops where this variant's scrape missed a batch the other stored."""


class CriticalQuery(_Strict):
    """A query's values per variant: one series, or one series per label set."""

    name: Annotated[str, pydantic.StringConstraints(min_length=1)]
    """The query's name, as reasons give it."""
    baseline: Samples | LabelledSamples
    """Its answer on the baseline: one list of samples, or one per label set keyed like a=x,b=y."""
    candidate: Samples | LabelledSamples
    """Its answer on the candidate, in the same shape."""


class Objectives(_Strict):
    min_series_reduction: Fraction = 0.5
    """The share of series the candidate must remove: Promote needs the reduction's lower bound above it."""
    max_query_error: Fraction = 0.01
    """The most a critical query's answer may differ on the candidate, relative to the baseline's."""
    max_cpu_increase: Fraction = 0.1
    """The most the candidate's collector CPU may exceed the baseline's, relative."""
    max_memory_increase: Fraction = 0.1
    """The most the candidate's collector memory may exceed the baseline's, relative."""
    max_refused_points_ratio: Fraction = 0.001
    """The most of its received points the candidate may refuse or fail to export."""
    max_input_difference: Fraction = 0.005
    """How far the variants' accepted input may differ before a Promote is refused."""
    max_anomaly_share: Fraction = 0.05
    """The share of samples flagged as anomalies (restarts, gaps, pauses, spikes) above which there is no verdict."""


class CostModel(_Strict):
    usd_per_million_datapoints: Price = 0.10
    """The backend's price per million datapoints ingested."""
    usd_per_active_series_month: Price = 0.005
    """The backend's price per active series per month."""
    usd_per_cpu_core_month: Price = 25.0
    """What a collector CPU core costs per month."""
    usd_per_gib_month: Price = 3.5
    """What a GiB of collector memory costs per month."""


class AnalysisInput(_Strict):
    """What `phoenix analyze` and the operator give the engine."""

    interval_seconds: Annotated[float, pydantic.Field(gt=0)]
    """Seconds between two samples."""
    baseline: Variant
    """The baseline's figures."""
    candidate: Variant
    """The candidate's figures, sample for sample with the baseline's."""
    critical_queries: list[CriticalQuery] = pydantic.Field(default_factory=list)
    """Each critical query's answers on both variants."""
    objectives: Objectives = pydantic.Field(default_factory=Objectives)
    """What the candidate must show for a Promote."""
    cost_model: CostModel = pydantic.Field(default_factory=CostModel)
    """The prices that turn the figures into monthly dollars."""
    alpha: Annotated[float, pydantic.Field(gt=0, lt=0.5)] = 0.05
    """The error rate the verdict allows."""
    mode: Literal["sequential", "fixed"] = "sequential"
    """sequential: decide at the first sample that can; fixed: one test at the last."""
    planned_samples: Annotated[int, pydantic.Field(gt=0)] | None = None
    """The samples the run is planned to take: the reduction's trend is projected to its end, and the confidence
    sequences are tightest there (default: those given)."""

    def to_json(self) -> dict[str, Any]:
        """The JSON `phoenix analyze -f` reads."""
        return self.model_dump(mode="json", by_alias=True)


def wire_path(path: str) -> str:
    """A dotted path of Python names as the JSON spells it: `candidate.active_series` is `candidate.activeSeries`."""
    return ".".join(alias_generators.to_camel(part) for part in path.split("."))


class InvalidInput(ValueError):
    """The input does not have the contract's shape; one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def parse(data: object) -> AnalysisInput:
    """The JSON input, camelCase keys only."""
    try:
        return AnalysisInput.model_validate(data, by_alias=True, by_name=False)
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
    TREND_NOT_SHOWN = "trend-not-shown"
    INPUTS_DIFFER = "inputs-differ"
    TOO_MANY_ANOMALIES = "too-many-anomalies"
    TIME_TO_DECIDE = "time-to-decide"


# The kinds that prove a Reject; the undetermined ones never stand in a final verdict.
REJECTING = frozenset(
    {ReasonKind.SERIES_BELOW, ReasonKind.QUERY_DIFFERS, ReasonKind.QUERY_LOST_LABELS, ReasonKind.GUARDRAIL_BREACHED}
)
UNDETERMINED = frozenset(
    {
        ReasonKind.SERIES_UNDETERMINED,
        ReasonKind.QUERY_UNDETERMINED,
        ReasonKind.GUARDRAIL_UNDETERMINED,
        ReasonKind.TREND_NOT_SHOWN,
    }
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


class Trend(_Strict):
    """The series reduction's straight-line fit at the decision."""

    slope_per_hour: Interval
    # the fitted line at the run's planned end; Promote needs its lower bound above the objective
    projected_at_end: Interval
    # from the decision, when a falling reduction's line reaches the objective (None: it does not fall onto it)
    crosses_objective_in_seconds: float | None
    adverse: bool  # the reduction falls, significantly


class InputAgreement(_Strict):
    """The points each variant's collector accepted over the samples used."""

    baseline_points: float
    candidate_points: float
    difference: float  # the candidate's input rate over the baseline's, less 1 (fitted, see `pairing`)
    tolerance: float
    agrees: bool  # no difference shown beyond the tolerance, in points or in the LoadSim's lost batches
    # what a LoadSim delivered to each variant over the samples used, when it was measured
    baseline_batches_sent: int | None = None
    baseline_batches_failed: int | None = None
    candidate_batches_sent: int | None = None
    candidate_batches_failed: int | None = None


class AnomalousSample(_Strict):
    index: int
    variant: Literal["baseline", "candidate"]
    pattern: Literal["collector restart", "scrape gap", "missed batch", "load pause", "spike"]


class Anomalies(_Strict):
    samples: list[AnomalousSample] = pydantic.Field(default_factory=list)
    share: float = 0.0  # of the samples used, the share flagged (missed batches aside)
    limit: float = 0.05
    excluded: int = 0  # gap and missed-batch samples, which leave the analysis; the others stay in


class VariantSummary(_Strict):
    active_series: float
    datapoints_per_minute: float
    cpu_cores: float | None
    memory_bytes: float | None
    refused_points_ratio: float | None
    monthly_cost_usd: float


class ConfidenceSequence(_Strict):
    """The series reduction's running estimate and bounds, one point per sample the engine used."""

    sample: list[int]  # each point's sample in the input, gaps included: gap samples have no point
    estimate: list[float]
    ci_low: list[float]
    ci_high: list[float]


class Result(_Strict):
    decision: Decision = "Inconclusive"
    reasons: list[Reason] = pydantic.Field(default_factory=list)
    series_reduction: Interval | None = None
    datapoint_reduction: Interval | None = None
    monthly_savings_usd: Interval | None = None
    fidelity: Fidelity = pydantic.Field(default_factory=Fidelity)
    guardrails: list[Guardrail] = pydantic.Field(default_factory=list)
    variants: dict[str, VariantSummary] = pydantic.Field(default_factory=dict)
    series_trend: Trend | None = None
    input_agreement: InputAgreement | None = None
    anomalies: Anomalies = pydantic.Field(default_factory=Anomalies)
    # an Inconclusive's estimate of the time its intervals still need, at the current means and variances
    seconds_to_decide: float | None = None
    samples_used: int = 0
    decided_at_index: int | None = None
    mode: Literal["sequential", "fixed"] = "sequential"
    wilcoxon_p_value: float | None = None
    series_reduction_sequence: ConfidenceSequence | None = None

    @property
    def reason_texts(self) -> list[str]:
        return [reason.text for reason in self.reasons]

    @property
    def breached_guardrails(self) -> list[str]:
        return [g.name for g in self.guardrails if g.status == "breach"]

    def to_json(self) -> dict[str, Any]:
        """The JSON contract: as the model, with each reason as its text."""
        data = self.model_dump(mode="json", by_alias=True)
        data["reasons"] = self.reason_texts
        return data
