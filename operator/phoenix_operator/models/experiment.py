"""PhoenixExperiment: an A/B test of two pipelines over a duration; holds the verdict."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import promql_parser
import pydantic

from phoenix_analysis import contract
from phoenix_operator.models import common, loadsim, pipeline

Phase = Literal["Pending", "Initializing", "Running", "Analyzing", "Completed", "Failed", "Aborted"]
Decision = contract.Decision


class PipelineRef(common.Model):
    pipeline_ref: common.DnsLabel = pydantic.Field(
        description="A running pipeline in the experiment's own namespace: it is shadowed, and mirrored with"
        " load.source mirror."
    )

    @pydantic.field_validator("pipeline_ref", mode="before")
    @classmethod
    def _same_namespace(cls, value: object) -> object:
        # the operator would shadow and mirror it with its own rights, not those of who made the experiment
        if isinstance(value, str) and "/" in value:
            raise ValueError(
                f"{value!r} names another namespace: pipelineRef names a pipeline in the experiment's own"
                " namespace; create the experiment there"
            )
        return value


def _baseline_kind(value: object) -> str | None:
    """Tag of a baseline: an existing pipeline by reference, or a template."""
    if isinstance(value, dict):
        if "pipelineRef" in value or "pipeline_ref" in value:
            return "ref"
        template = value.get("template")
        return template if isinstance(template, str) else None
    if isinstance(value, PipelineRef):
        return "ref"
    template = getattr(value, "template", None)
    return template if isinstance(template, str) else None


BaselineSource = Annotated[
    Annotated[PipelineRef, pydantic.Tag("ref")]
    | Annotated[pipeline.BaselineVariant, pydantic.Tag("baseline")]
    | Annotated[pipeline.CandidateVariant, pydantic.Tag("candidate")]
    | Annotated[pipeline.AdaptiveVariant, pydantic.Tag("adaptive")],
    pydantic.Discriminator(
        _baseline_kind,
        custom_error_type="baseline_source",
        custom_error_message="expected pipelineRef, or template baseline, candidate or adaptive",
    ),
]


class MirrorSpec(common.Model):
    """Which of the referenced pipeline's real input is copied to both shadows."""

    fraction: Annotated[float, pydantic.Field(gt=0.0, le=1.0)] = pydantic.Field(
        default=1.0,
        description="The share of resources mirrored, chosen by a hash of sampleBy, so a host is mirrored whole"
        " or not at all; resources without that attribute are always mirrored.",
    )
    sample_by: common.AttributeName = pydantic.Field(
        default="host.name", description="The resource attribute whose hash picks the mirrored resources."
    )


class LoadSpec(common.Model):
    source: Literal["loadSim", "mirror"] = pydantic.Field(
        default="loadSim",
        description="loadSim: a synthetic load sent to both variants. mirror: a copy of the baseline"
        " pipelineRef's own input, sent to both for the experiment's duration.",
    )
    load_sim: loadsim.LoadProfileSpec = pydantic.Field(default_factory=loadsim.LoadProfileSpec)
    mirror: MirrorSpec = pydantic.Field(default_factory=MirrorSpec)


class PrometheusSpec(common.Model):
    url: Annotated[str, pydantic.StringConstraints(pattern=r"^https?://\S+$")]
    secret_ref: common.SecretKeyRef | None = pydantic.Field(
        default=None, description="A Secret key holding a bearer token for Prometheus."
    )


class CriticalQuery(common.Model):
    name: common.DnsLabel
    query: Annotated[str, pydantic.StringConstraints(min_length=1, max_length=4096)]

    @pydantic.model_validator(mode="after")
    def _parses(self) -> CriticalQuery:
        # refused at apply-time validation and at acceptance, not at the first measurement
        try:
            promql_parser.parse(self.query)
        except ValueError as error:
            raise ValueError(f"critical query {self.name} is not PromQL: {error}") from None
        return self


class AnalysisSpec(common.Model):
    prometheus: PrometheusSpec | None = None
    alpha: Annotated[float, pydantic.Field(gt=0.0, lt=0.5)] = 0.05
    mode: Literal["sequential", "fixed"] = "sequential"
    objectives: contract.Objectives = pydantic.Field(default_factory=contract.Objectives)
    critical_queries: list[CriticalQuery] = pydantic.Field(
        default_factory=list,
        # names are unique: the API server keys the list by them
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )
    cost_model: contract.CostModel = pydantic.Field(default_factory=contract.CostModel)

    @pydantic.model_validator(mode="after")
    def _unique_query_names(self) -> AnalysisSpec:
        names = [q.name for q in self.critical_queries]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"critical query names must be unique, repeated: {', '.join(duplicates)}")
        return self


class PromotionSpec(common.Model):
    policy: Literal["manual", "auto"] = "manual"
    target_pipeline_ref: common.DnsLabel | None = pydantic.Field(
        default=None, description="The pipeline to promote into; by default the baseline's pipelineRef."
    )


class DriftWatchSpec(common.Model):
    """Keep checking the promoted pipeline against what the experiment measured."""

    model_config = common.cel_rules(
        ("duration(self.interval) > duration('0s')", "driftWatch.interval must be positive"),
        ("duration(self.interval) <= duration(self.duration)", "driftWatch.interval must not exceed its duration"),
    )

    duration: common.Duration = pydantic.Field(
        default="168h", description="How long after the promotion to watch (168h: a week)."
    )
    interval: common.Duration = pydantic.Field(
        default="5m",
        description="Time between checks; each costs one query per watched figure and critical query.",
    )
    tolerance: Annotated[float, pydantic.Field(ge=0.0, le=1.0)] = pydantic.Field(
        default=0.25,
        description="How far, relative to the range the experiment measured, the share of received points"
        " the pipeline exports may move before it has drifted.",
    )
    rollback: Literal["manual", "auto"] = pydantic.Field(
        default="manual",
        description="auto: restore the target's spec from before the promotion when it drifts,"
        " as `kubectl phoenix rollback` does.",
    )

    @pydantic.model_validator(mode="after")
    def _timing(self) -> DriftWatchSpec:
        interval = common.duration_seconds(self.interval)
        if not 0 < interval <= common.duration_seconds(self.duration):
            raise ValueError(
                f"driftWatch.interval ({self.interval}) must be positive and no longer than its duration"
                f" ({self.duration})"
            )
        return self


AUTO_NEEDS_TARGET = "policy auto needs targetPipelineRef, or a baseline pipelineRef to promote into"
MIRROR_NEEDS_REF = "load.source mirror copies the input of the baseline's pipelineRef, so it needs one"


class ExperimentSpec(common.Model):
    model_config = common.cel_rules(
        ("duration(self.duration) > duration('0s')", "duration must be positive"),
        ("duration(self.warmup) < duration(self.duration)", "warmup must be shorter than duration"),
        (
            "duration(self.analysisInterval) > duration('0s')"
            " && duration(self.analysisInterval) <= duration(self.duration)",
            "analysisInterval must be positive and no longer than duration",
        ),
        (
            "!has(self.promotion) || !has(self.promotion.policy) || self.promotion.policy != 'auto'"
            " || has(self.promotion.targetPipelineRef) || has(self.baseline.pipelineRef)",
            AUTO_NEEDS_TARGET,
        ),
        (
            "!has(self.load) || !has(self.load.source) || self.load.source != 'mirror'"
            " || has(self.baseline.pipelineRef)",
            MIRROR_NEEDS_REF,
        ),
    )

    baseline: BaselineSource
    candidate: pipeline.PipelineVariant
    load: LoadSpec = pydantic.Field(default_factory=LoadSpec)
    duration: common.Duration = "10m"
    warmup: common.Duration = "30s"
    analysis_interval: common.Duration = "30s"
    analysis: AnalysisSpec = pydantic.Field(default_factory=AnalysisSpec)
    promotion: PromotionSpec = pydantic.Field(default_factory=PromotionSpec)
    drift_watch: DriftWatchSpec | None = pydantic.Field(
        default=None,
        description="After a promotion, watch the promoted pipeline for drift; may be added or edited at any time.",
    )
    abort: bool = False
    ttl_seconds_after_finished: int | None = pydantic.Field(
        default=None,
        ge=0,
        description="Delete the experiment this many seconds after it ends, as a Job's ttlSecondsAfterFinished"
        " does (operator only). Unset keeps it until deleted.",
    )

    @pydantic.model_validator(mode="after")
    def _timing(self) -> ExperimentSpec:
        duration = common.duration_seconds(self.duration)
        if duration <= 0:
            raise ValueError("duration must be positive")
        if common.duration_seconds(self.warmup) >= duration:
            raise ValueError(f"warmup ({self.warmup}) must be shorter than duration ({self.duration})")
        interval = common.duration_seconds(self.analysis_interval)
        if not 0 < interval <= duration:
            raise ValueError(
                f"analysisInterval ({self.analysis_interval}) must be positive and "
                f"no longer than duration ({self.duration})"
            )
        return self

    @pydantic.model_validator(mode="after")
    def _auto_promotion_has_a_target(self) -> ExperimentSpec:
        promotion = self.promotion
        untargeted = promotion.target_pipeline_ref is None and not isinstance(self.baseline, PipelineRef)
        if promotion.policy == "auto" and untargeted:
            raise ValueError(AUTO_NEEDS_TARGET)
        return self

    @pydantic.model_validator(mode="after")
    def _mirror_has_a_source(self) -> ExperimentSpec:
        if self.load.source == "mirror" and not isinstance(self.baseline, PipelineRef):
            raise ValueError(MIRROR_NEEDS_REF)
        return self

    @property
    def mirrored(self) -> bool:
        return self.load.source == "mirror"

    def describe_load(self) -> str:
        """What both variants received, in a line for the status and the report."""
        if self.mirrored and isinstance(self.baseline, PipelineRef):
            mirror = self.load.mirror
            share = "all" if mirror.fraction >= 1 else f"{mirror.fraction:.0%}, by {mirror.sample_by},"
            return f"mirrored: {share} of the real input of pipeline {self.baseline.pipeline_ref}"
        load = self.load.load_sim
        return (
            f"LoadSim: {load.profile}, {load.hosts} hosts x {load.processes_per_host} processes"
            f" every {load.interval_seconds:g}s"
        )


class Interval(common.Model):
    estimate: float
    ci_low: float
    ci_high: float


class VariantFigures(common.Model):
    active_series: float | None = None
    datapoints_per_minute: float | None = None
    cpu_cores: float | None = None
    memory_bytes: float | None = None
    # of the points the variant's collector received, the share it refused or failed to export
    refused_points_ratio: float | None = None


class Fidelity(common.Model):
    checked: int
    passed: int
    worst_query: str | None = None
    worst_error: float | None = None


class Guardrail(common.Model):
    name: str
    passed: bool
    estimate: float | None = None
    limit: float | None = None


class Results(common.Model):
    baseline: VariantFigures = pydantic.Field(default_factory=VariantFigures)
    candidate: VariantFigures = pydantic.Field(default_factory=VariantFigures)
    series_reduction: Interval | None = None
    datapoint_reduction: Interval | None = None
    monthly_savings_usd: Interval | None = None
    fidelity: Fidelity | None = None
    guardrails: list[Guardrail] = pydantic.Field(default_factory=list)
    samples_used: int = 0


class Verdict(common.Model):
    decision: Decision
    reasons: list[str] = pydantic.Field(default_factory=list)
    decided_at: datetime


class PromotionRecord(common.Model):
    """What a promotion changed, so that `kubectl phoenix rollback` can undo it."""

    target: str = pydantic.Field(description="The pipeline that received the candidate.")
    previous_spec: str | None = pydantic.Field(
        default=None,
        description="The target's spec before the promotion, as JSON; absent when the promotion created the target.",
    )
    promoted_at: datetime
    rolled_back_at: datetime | None = None


class Range(common.Model):
    low: float
    high: float


class DriftStatus(common.Model):
    """Where the drift watch of the promoted pipeline stands; the `Drifted` condition says whether it holds."""

    expected_kept_ratio: Range | None = pydantic.Field(
        default=None,
        description="The share of received points the candidate exported during the experiment, widened by the"
        " tolerance.",
    )
    kept_ratio: float | None = pydantic.Field(
        default=None, description="The share of received points the promoted pipeline exported at the last check."
    )
    cpu_seconds_per_point_limit: float | None = pydantic.Field(
        default=None,
        description="The baseline's highest collector CPU seconds per received point during the experiment, raised"
        " by maxCpuIncrease and the tolerance.",
    )
    cpu_seconds_per_point: float | None = pydantic.Field(
        default=None, description="The promoted pipeline's collector CPU seconds per received point at the last check."
    )
    memory_bytes_limit: float | None = pydantic.Field(
        default=None,
        description="The baseline's highest collector memory (RSS) during the experiment, raised by maxMemoryIncrease"
        " and the tolerance.",
    )
    memory_bytes: float | None = pydantic.Field(
        default=None, description="The promoted pipeline's collector memory (RSS) at the last check."
    )
    checked_at: datetime | None = None


class ExperimentStatus(common.StatusBase):
    phase: Phase = "Pending"
    started_at: datetime | None = pydantic.Field(default=None, description="When the load started.")
    analyzing_since: datetime | None = pydantic.Field(
        default=None, description="When the final analysis began; the verdict waits for the last samples."
    )
    results: Results | None = None
    verdict: Verdict | None = None
    baseline_pipeline: str | None = None
    candidate_pipeline: str | None = None
    load_sim: str | None = None
    load_source: Literal["loadSim", "mirror"] | None = pydantic.Field(
        default=None, description="What both variants received: a LoadSim's synthetic load, or mirrored real input."
    )
    promotion: PromotionRecord | None = None
    drift: DriftStatus | None = None
