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
    """The synthetic load sent to both variants when source is loadSim."""
    mirror: MirrorSpec = pydantic.Field(default_factory=MirrorSpec)
    """Which share of the real input is copied when source is mirror."""


CERT_WITH_KEY = "cert and key go together: a client certificate needs its key"
ONE_CREDENTIAL = "give a bearer token (secretRef) or basicAuth, not both"
TLS_NEEDS_HTTPS = "tls needs an https:// url"


class BasicAuth(common.Model):
    """A user name and password for Prometheus (its web config's basic_auth_users), each from a Secret key."""

    username: common.SecretKeyRef
    """The Secret key holding the user name."""
    password: common.SecretKeyRef
    """The Secret key holding the password."""


class PrometheusTls(common.Model):
    """How Phoenix checks Prometheus's certificate and proves its own; there is no way to skip the check."""

    model_config = common.cel_rules(("has(self.cert) == has(self.key)", CERT_WITH_KEY))

    ca: common.SecretKeyRef | None = None
    """A Secret key holding the PEM CA bundle that signed Prometheus's certificate (default: the system's CAs)."""
    cert: common.SecretKeyRef | None = None
    """A Secret key holding the PEM client certificate, for a Prometheus that requires one."""
    key: common.SecretKeyRef | None = None
    """A Secret key holding the client certificate's PEM private key."""

    @pydantic.model_validator(mode="after")
    def _cert_with_key(self) -> PrometheusTls:
        if (self.cert is None) != (self.key is None):
            raise ValueError(CERT_WITH_KEY)
        return self


class PrometheusSpec(common.Model):
    model_config = common.cel_rules(
        ("!(has(self.secretRef) && has(self.basicAuth))", ONE_CREDENTIAL),
        ("!has(self.tls) || self.url.startsWith('https://')", TLS_NEEDS_HTTPS),
    )

    url: Annotated[str, pydantic.StringConstraints(pattern=r"^https?://\S+$")]
    """The Prometheus HTTP API base URL, e.g. http://prometheus-operated.monitoring:9090."""
    secret_ref: common.SecretKeyRef | None = pydantic.Field(
        default=None, description="A Secret key holding a bearer token for Prometheus."
    )
    basic_auth: BasicAuth | None = None
    """A user name and password, instead of a bearer token."""
    tls: PrometheusTls | None = None
    """The CA to check an https URL's certificate with, and a client certificate; only with an https URL."""

    @pydantic.model_validator(mode="after")
    def _one_credential(self) -> PrometheusSpec:
        if self.secret_ref is not None and self.basic_auth is not None:
            raise ValueError(ONE_CREDENTIAL)
        if self.tls is not None and not self.url.startswith("https://"):
            raise ValueError(TLS_NEEDS_HTTPS)
        return self


class CriticalQuery(common.Model):
    name: common.DnsLabel
    """A short name for the query, unique in the experiment; reasons and status use it."""
    query: Annotated[str, pydantic.StringConstraints(min_length=1, max_length=4096)]
    """PromQL whose answer must stay the same on the candidate; it is run once per variant."""

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
    """Where both variants' metrics are read; by default the operator's PHOENIX_PROMETHEUS_URL."""
    alpha: Annotated[float, pydantic.Field(gt=0.0, lt=0.5)] = 0.05
    """The error rate the verdict allows: a false Promote happens at most alpha/2 of the time."""
    mode: Literal["sequential", "fixed"] = "sequential"
    """sequential: checked at every interval, may stop early. fixed: one test at the end."""
    objectives: contract.Objectives = pydantic.Field(default_factory=contract.Objectives)
    """What the candidate must show for a Promote."""
    critical_queries: list[CriticalQuery] = pydantic.Field(
        default_factory=list,
        # names are unique: the API server keys the list by them
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )
    """Queries people rely on; any that disagrees on the candidate vetoes a Promote."""
    cost_model: contract.CostModel = pydantic.Field(default_factory=contract.CostModel)
    """The prices that turn series, datapoints, CPU and memory into monthly dollars."""

    @pydantic.model_validator(mode="after")
    def _unique_query_names(self) -> AnalysisSpec:
        names = [q.name for q in self.critical_queries]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"critical query names must be unique, repeated: {', '.join(duplicates)}")
        return self


class PromotionSpec(common.Model):
    policy: Literal["manual", "auto"] = "manual"
    """manual: print or apply the promotion with kubectl phoenix promote. auto: the operator applies it."""
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
    """The pipeline as it is: a pipelineRef to a running one, or a template with its parameters."""
    candidate: pipeline.PipelineVariant
    """The pipeline to try: a template (usually candidate) with its parameters."""
    load: LoadSpec = pydantic.Field(default_factory=LoadSpec)
    """What both variants receive: a LoadSim, or a mirror of the baseline pipelineRef's real input."""
    duration: common.Duration = "10m"
    """How long the experiment runs from the moment its load starts."""
    warmup: common.Duration = pydantic.Field(
        default="30s",
        description="The longest the pipelines get to settle before analysis begins. It ends sooner, once the"
        " mean of each variant's series count and datapoint rate over its last 4 samples is within 5% of the mean"
        " over the 4 before, and the longest rate window of the critical queries has filled (an adaptive"
        " candidate always gets the whole warmup); status.warmup says when it ended and why.",
    )
    analysis_interval: common.Duration = "30s"
    """How often the operator measures and re-evaluates the verdict."""
    analysis: AnalysisSpec = pydantic.Field(default_factory=AnalysisSpec)
    """How the verdict is reached: Prometheus, alpha, mode, objectives, critical queries, prices."""
    promotion: PromotionSpec = pydantic.Field(default_factory=PromotionSpec)
    """What happens after a Promote."""
    drift_watch: DriftWatchSpec | None = pydantic.Field(
        default=None,
        description="After a promotion, watch the promoted pipeline for drift; may be added or edited at any time.",
    )
    abort: bool = False
    """Set true to stop the experiment: it ends Aborted and removes what it created."""
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


# Status stays bounded however many samples misbehave
MAX_ANOMALIES_IN_STATUS = 20


class Interval(common.Model):
    estimate: float
    """The point estimate."""
    ci_low: float
    """The lower bound of its confidence interval at the experiment's alpha."""
    ci_high: float
    """The upper bound of its confidence interval."""


class VariantFigures(common.Model):
    active_series: float | None = None
    """Series the variant exported, on average over the samples used."""
    datapoints_per_minute: float | None = None
    """Datapoints the variant exported per minute, on average."""
    cpu_cores: float | None = None
    """The variant's collector CPU, in cores, on average."""
    memory_bytes: float | None = None
    """The variant's collector memory (RSS), in bytes, on average."""
    refused_points_ratio: float | None = None
    """Of the points the variant's collector received, the share it refused or failed to export."""


class Fidelity(common.Model):
    checked: int
    """How many critical queries were compared."""
    passed: int
    """How many of them were shown to agree within maxQueryError."""
    worst_query: str | None = None
    """The query with the largest mean error."""
    worst_error: float | None = None
    """Its mean relative error."""


class Guardrail(common.Model):
    name: str
    """What the guardrail watches, e.g. collector cpu cores increase."""
    passed: bool
    """Shown within its limit."""
    estimate: float | None = None
    """The candidate's increase over the baseline (or, for refused points, its ratio)."""
    limit: float | None = None
    """The objective it is held to."""


class Trend(common.Model):
    """The series reduction's straight-line fit when the verdict was taken."""

    slope_per_hour: Interval = pydantic.Field(description="How fast the reduction moves, per hour, with its interval.")
    projected_at_end: Interval = pydantic.Field(
        description="The fitted line at the run's planned end; a Promote needs its lower bound above the objective."
    )
    crosses_objective_in_seconds: float | None = pydantic.Field(
        default=None, description="When a falling reduction's line reaches the objective, from the verdict's sample."
    )
    adverse: bool = pydantic.Field(description="The reduction falls, significantly.")


class InputAgreement(common.Model):
    """Whether both variants received the same input: the points each collector accepted over the samples used."""

    baseline_points: float
    """Points the baseline's collectors accepted over the samples used."""
    candidate_points: float
    """Points the candidate's collectors accepted over the samples used."""
    difference: float = pydantic.Field(description="The candidate's input rate over the baseline's, less 1.")
    tolerance: float = pydantic.Field(description="maxInputDifference.")
    agrees: bool = pydantic.Field(
        description="No difference shown beyond the tolerance, in points or in the LoadSim's lost batches;"
        " false refuses a Promote."
    )
    baseline_batches_sent: int | None = None
    """Batches the experiment's LoadSim delivered to the baseline over the samples used."""
    baseline_batches_failed: int | None = None
    """Batches it could not deliver to the baseline (send errors and drops)."""
    candidate_batches_sent: int | None = None
    """Batches the LoadSim delivered to the candidate over the samples used."""
    candidate_batches_failed: int | None = None
    """Batches it could not deliver to the candidate."""


class AnomalousSample(common.Model):
    index: int = pydantic.Field(description="The sample's position from the warmup's end.")
    variant: Literal["baseline", "candidate"]
    """The variant that misbehaved."""
    pattern: Literal["collector restart", "scrape gap", "missed batch", "load pause", "spike"]
    """What it looked like: collector restart, scrape gap, missed batch, load pause or spike."""


class Anomalies(common.Model):
    """Samples where one variant misbehaved and the other did not."""

    samples: list[AnomalousSample] = pydantic.Field(
        default_factory=list, description=f"The first {MAX_ANOMALIES_IN_STATUS} flagged samples."
    )
    count: int = pydantic.Field(default=0, description="All flagged samples.")
    share: float = pydantic.Field(
        default=0.0, description="Of the samples used, the share flagged; missed batches are not counted."
    )
    limit: float = pydantic.Field(default=0.05, description="maxAnomalyShare: above it there is no verdict.")
    excluded: int = pydantic.Field(
        default=0,
        description="Scrape gaps and missed batches, which leave the analysis; the others stay in.",
    )


class Results(common.Model):
    baseline: VariantFigures = pydantic.Field(default_factory=VariantFigures)
    """The baseline's measured figures."""
    candidate: VariantFigures = pydantic.Field(default_factory=VariantFigures)
    """The candidate's measured figures."""
    series_reduction: Interval | None = None
    """1 - candidate series / baseline series, with its interval: the figure the objective judges."""
    datapoint_reduction: Interval | None = None
    """1 - candidate datapoints / baseline datapoints, with its interval."""
    monthly_savings_usd: Interval | None = None
    """The baseline's monthly cost less the candidate's, at the costModel's prices."""
    fidelity: Fidelity | None = None
    """How the critical queries compared."""
    guardrails: list[Guardrail] = pydantic.Field(default_factory=list)
    """The collector CPU, memory and refused-points guardrails that were measured."""
    samples_used: int = 0
    """The samples the figures come from; at a decision, those up to it."""
    trend: Trend | None = None
    """The series reduction's straight-line fit: is it drifting?"""
    input_agreement: InputAgreement | None = None
    """Whether both variants received the same input."""
    anomalies: Anomalies | None = None
    """Samples where one variant misbehaved and the other did not."""
    seconds_to_decide: float | None = pydantic.Field(
        default=None,
        description="While Inconclusive: about how much longer the intervals need at the current means and variances.",
    )


class Verdict(common.Model):
    decision: Decision
    """Promote, Reject or Inconclusive."""
    reasons: list[str] = pydantic.Field(default_factory=list)
    """Why, one sentence each, with the figures."""
    decided_at: datetime
    """When the verdict was reached."""


class PromotionRecord(common.Model):
    """What a promotion changed, so that `kubectl phoenix rollback` can undo it."""

    target: str = pydantic.Field(description="The pipeline that received the candidate.")
    previous_spec: str | None = pydantic.Field(
        default=None,
        description="The target's spec before the promotion, as JSON; absent when the promotion created the target.",
    )
    promoted_at: datetime
    """When the candidate was promoted."""
    rolled_back_at: datetime | None = None
    """When the promotion was undone, if it was."""


class Range(common.Model):
    low: float
    """The lower end."""
    high: float
    """The upper end."""


class WarmupStatus(common.Model):
    """When analysis began, and why then: both pipelines settled, or the warmup's limit came first."""

    ended_at: datetime = pydantic.Field(description="The time of the first analysed sample.")
    seconds: float = pydantic.Field(description="How long the warmup lasted, from the load's start.")
    settled: bool = pydantic.Field(
        description="True when the warmup ended early because both variants' series counts and datapoint rates"
        " held steady; false when it ran its whole length (spec.warmup), as it always does for an adaptive"
        " candidate, whose loop may move again after a steady spell."
    )


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
    """When the promoted pipeline was last checked."""


class ExperimentStatus(common.StatusBase):
    phase: Phase = "Pending"
    """Pending, Initializing, Running, Analyzing, then Completed, Failed or Aborted."""
    started_at: datetime | None = pydantic.Field(default=None, description="When the load started.")
    analyzing_since: datetime | None = pydantic.Field(
        default=None, description="When the final analysis began; the verdict waits for the last samples."
    )
    warmup: WarmupStatus | None = None
    """The warmup actually used, once it is over."""
    results: Results | None = None
    """The latest measured figures; after a verdict, those it was reached on."""
    verdict: Verdict | None = None
    """The decision, once there is one."""
    baseline_pipeline: str | None = None
    """The PhoenixProcessPipeline the experiment created as its baseline."""
    candidate_pipeline: str | None = None
    """The PhoenixProcessPipeline the experiment created as its candidate."""
    load_sim: str | None = None
    """The LoadSim the experiment created, when its load is a LoadSim."""
    load_source: Literal["loadSim", "mirror"] | None = pydantic.Field(
        default=None, description="What both variants received: a LoadSim's synthetic load, or mirrored real input."
    )
    promotion: PromotionRecord | None = None
    """What a promotion changed, so that kubectl phoenix rollback can undo it."""
    drift: DriftStatus | None = None
    """Where the drift watch of the promoted pipeline stands."""
