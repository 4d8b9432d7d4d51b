"""PhoenixProcessPipeline: one collector pipeline rendered from a template.

`parameters` is typed per template. The template name is the tag of a
discriminated union, so a candidate's `dropMetrics` is checked as a list of
metric names and an adaptive pipeline's budget as a positive integer.
"""

from __future__ import annotations

import datetime
import typing
from typing import Annotated, Literal

import pydantic

from phoenix_operator.models import common

# The upstream contrib image at the release tools/otelcol pins; it carries
# every component the templates use. A test keeps the two in step.
DEFAULT_COLLECTOR_IMAGE = "otel/opentelemetry-collector-contrib:0.155.0"

VariantName = Literal["baseline", "candidate"]
# Every experiment compares these two, in this order.
VARIANTS: tuple[VariantName, ...] = typing.get_args(VariantName)


class CommonParameters(common.Model):
    """Knobs every template has."""

    memory_limit_mib: Annotated[int, pydantic.Field(ge=32, le=65536)] = pydantic.Field(
        default=512,
        description="The memory_limiter's limit, first in every pipeline: above it the collector refuses data. "
        "A pipeline's collector.resources.limits.memory lowers it to 80% of that limit.",
    )
    batch_timeout: common.Duration = "1s"
    """How long the batch processor waits before it sends a batch that is not full."""
    metric_expiration: common.Duration = pydantic.Field(
        default="30s",
        description="How long the prometheus exporter keeps a series after its last point; "
        "short, so churned processes leave fast.",
    )


class BaselineParameters(CommonParameters):
    """The baseline forwards everything it receives."""


class KeepProcesses(common.Model):
    executable_names: list[common.ExecutableName] = pydantic.Field(
        default_factory=list,
        description="Executables that keep per-process detail.",
    )


class CandidateParameters(CommonParameters):
    """A candidate drops metrics and aggregates away per-process attributes."""

    drop_metrics: list[common.MetricName] = pydantic.Field(default_factory=list)
    """Metrics the candidate drops entirely, e.g. process.memory.virtual."""
    aggregate_away_attributes: list[common.AttributeName] = pydantic.Field(default_factory=list)
    """Process attributes removed, so that the processes that then share labels are summed."""
    keep_processes: KeepProcesses | None = None
    """Executables whose processes keep every attribute, whatever is aggregated away."""


class AdaptiveParameters(CommonParameters):
    """An adaptive pipeline keeps per-process detail for the busiest executables its series budget affords.

    Every other process is summed into one `other` series per host and
    metric; the operator's control loop chooses the keep list.
    """

    # the templates' parameters share one CRD schema, where minK and maxK may be absent
    model_config = common.cel_rules(
        ("!has(self.minK) || !has(self.maxK) || self.minK <= self.maxK", "minK must not exceed maxK")
    )

    series_budget: Annotated[int, pydantic.Field(gt=0)] = pydantic.Field(
        description="The most series the pipeline should export; the loop keeps it within the hysteresis band below.",
    )
    min_k: Annotated[int, pydantic.Field(ge=0)] = pydantic.Field(
        default=0, description="The fewest executables that keep per-process detail, even over budget."
    )
    max_k: Annotated[int, pydantic.Field(ge=0)] = pydantic.Field(
        default=50, description="The most executables that keep per-process detail."
    )
    adjust_interval_seconds: Annotated[int, pydantic.Field(ge=5)] = pydantic.Field(
        default=60,
        description="How often the loop reads the pipeline's series; also the least time between two changes.",
    )
    hysteresis_band: Annotated[float, pydantic.Field(gt=0, lt=1)] = pydantic.Field(
        default=0.1,
        description="Exported series between budget x (1 - band) and the budget leave the keep list alone.",
    )
    max_step: Annotated[int, pydantic.Field(ge=1)] = pydantic.Field(
        default=5, description="The most executables one adjustment adds or removes."
    )

    @pydantic.model_validator(mode="after")
    def _k_range(self) -> AdaptiveParameters:
        if self.min_k > self.max_k:
            raise ValueError(f"minK ({self.min_k}) must not exceed maxK ({self.max_k})")
        return self


class BaselineVariant(common.Model):
    template: Literal["baseline"]
    """baseline: forwards everything it receives."""
    parameters: BaselineParameters = pydantic.Field(default_factory=BaselineParameters)
    """The template's parameters: each template has its own (docs/reference.md lists them)."""


class CandidateVariant(common.Model):
    template: Literal["candidate"]
    """candidate: drops metrics and aggregates away per-process attributes."""
    parameters: CandidateParameters = pydantic.Field(default_factory=CandidateParameters)
    """The template's parameters: each template has its own (docs/reference.md lists them)."""


class AdaptiveVariant(common.Model):
    template: Literal["adaptive"]
    """adaptive: keeps per-process detail for as many executables as a series budget affords."""
    parameters: AdaptiveParameters
    """The template's parameters: each template has its own (docs/reference.md lists them)."""


PipelineVariant = Annotated[
    BaselineVariant | CandidateVariant | AdaptiveVariant,
    pydantic.Field(discriminator="template"),
]


class Toleration(common.Model):
    key: str | None = None
    """The taint key the toleration matches; empty with Exists matches every taint."""
    operator: Literal["Exists", "Equal"] | None = None
    """Exists or Equal (the default)."""
    value: str | None = None
    """The taint value, with Equal."""
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = None
    """The taint effect matched; empty matches all."""
    toleration_seconds: int | None = None
    """With NoExecute, how long the pod stays after the taint appears."""


class ResourceRequirements(common.Model):
    requests: dict[str, common.Quantity] = pydantic.Field(default_factory=dict)
    """CPU, memory and ephemeral storage the collector container requests, e.g. cpu: 100m."""
    limits: dict[str, common.Quantity] = pydantic.Field(default_factory=dict)
    """What it may not exceed; a memory limit also lowers memoryLimitMib to 80% of it. No CPU limit by default:
    a throttled collector falls behind and refuses data."""


class Autoscaling(common.Model):
    model_config = common.cel_rules(("self.minReplicas <= self.maxReplicas", "minReplicas must not exceed maxReplicas"))

    min_replicas: Annotated[int, pydantic.Field(ge=1, le=100)] = 1
    """The fewest collector replicas."""
    max_replicas: Annotated[int, pydantic.Field(ge=1, le=100)]
    """The most collector replicas."""
    target_cpu_utilization: Annotated[int, pydantic.Field(ge=1, le=100)] = 80
    """The average CPU use, in percent of the request, the autoscaler aims at."""

    @pydantic.model_validator(mode="after")
    def _ordered(self) -> Autoscaling:
        if self.min_replicas > self.max_replicas:
            raise ValueError(f"minReplicas ({self.min_replicas}) must not exceed maxReplicas ({self.max_replicas})")
        return self


class CollectorSpec(common.Model):
    model_config = common.cel_rules(
        ("!has(self.autoscaling) || self.mode == 'deployment'", "autoscaling needs mode deployment")
    )

    image: str = DEFAULT_COLLECTOR_IMAGE
    """The collector image; it must contain every component the templates use."""
    mode: Literal["deployment", "daemonset"] = "deployment"
    """deployment: replicas behind a Service agents send to. daemonset: one collector per node."""
    replicas: Annotated[int, pydantic.Field(ge=1, le=100)] = 1
    """Collector replicas, in deployment mode."""
    autoscaling: Autoscaling | None = pydantic.Field(
        default=None,
        description="A HorizontalPodAutoscaler scales the collector Deployment on CPU; replicas is then only its"
        " size when first created. In a cluster only.",
    )
    resources: ResourceRequirements = pydantic.Field(
        default_factory=lambda: ResourceRequirements(
            # ephemeral storage: the container's logs
            requests={"cpu": "100m", "memory": "256Mi", "ephemeral-storage": "64Mi"},
            limits={"memory": "1Gi", "ephemeral-storage": "256Mi"},
        )
    )
    """The collector container's resource requests and limits."""
    node_selector: dict[str, str] = pydantic.Field(default_factory=dict)
    """Node labels the collector pods must run on."""
    tolerations: list[Toleration] = pydantic.Field(default_factory=list)
    """Taints the collector pods tolerate."""

    @pydantic.model_validator(mode="after")
    def _autoscaled_deployment(self) -> CollectorSpec:
        if self.autoscaling is not None and self.mode != "deployment":
            raise ValueError("autoscaling needs mode deployment: a DaemonSet runs one collector per node")
        return self


class HeaderValueFrom(common.Model):
    secret_key_ref: common.SecretKeyRef
    """The Secret key holding the header's value; it reaches the collector as an environment variable."""


class ExporterHeader(common.Model):
    """A header on an extra exporter; its value comes only from a Secret key."""

    name: Annotated[str, pydantic.StringConstraints(pattern=r"^[A-Za-z0-9-]+$", max_length=128)]
    """The HTTP or gRPC header name, e.g. api-key."""
    value_from: HeaderValueFrom
    """Where its value comes from: a Secret key only."""


# New Relic's OTLP endpoint (US); EU accounts set https://otlp.eu01.nr-data.net
NEW_RELIC_ENDPOINT = "https://otlp.nr-data.net"
ENDPOINT_REQUIRED = "endpoint is required, except for type newrelic"
NEW_RELIC_KEY = "type newrelic needs an api-key header from a Secret (the license key)"


class ExtraExporter(common.Model):
    """An extra destination declared in the spec, e.g. a vendor's OTLP/HTTP endpoint.

    `newrelic` is OTLP/HTTP to New Relic: the endpoint defaults to its US
    one, and the license key must come as the `api-key` header.
    """

    model_config = common.cel_rules(
        ("self.type == 'newrelic' || has(self.endpoint)", ENDPOINT_REQUIRED),
        (
            "self.type != 'newrelic' || (has(self.headers) && self.headers.exists(h, h.name == 'api-key'))",
            NEW_RELIC_KEY,
        ),
    )

    name: common.DnsLabel
    """A name unique in the pipeline; the exporter's component id derives from it."""
    type: Literal["otlphttp", "otlp", "newrelic"]
    """otlphttp, otlp (gRPC) or newrelic (OTLP/HTTP to New Relic)."""
    endpoint: (
        Annotated[
            str,
            pydantic.StringConstraints(pattern=r"^https?://[A-Za-z0-9.\-:\[\]]+(/[A-Za-z0-9._~\-/]*)?$"),
        ]
        | None
    ) = pydantic.Field(default=None, description="Required, except for newrelic (default " + NEW_RELIC_ENDPOINT + ").")
    # bounded, so that the API server can bound the cost of the rules above
    headers: list[ExporterHeader] = pydantic.Field(default_factory=list, max_length=16)
    """Headers sent with every export, each from a Secret key."""

    @pydantic.model_validator(mode="after")
    def _destination(self) -> ExtraExporter:
        if self.type != "newrelic" and self.endpoint is None:
            raise ValueError(f"exporter {self.name}: {ENDPOINT_REQUIRED}")
        if self.type == "newrelic" and "api-key" not in {h.name for h in self.headers}:
            raise ValueError(f"exporter {self.name}: {NEW_RELIC_KEY}")
        return self

    @property
    def destination(self) -> str:
        return self.endpoint or NEW_RELIC_ENDPOINT


class PipelineSpecBase(common.Model):
    collector: CollectorSpec = pydantic.Field(default_factory=CollectorSpec)
    """How the collectors run: image, mode, replicas, resources, scheduling."""
    exporters: list[ExtraExporter] = pydantic.Field(default_factory=list, max_length=8)
    """Destinations besides the prometheus exporter the operator measures."""
    experiment_ref: common.DnsLabel | None = None
    """The experiment that created this pipeline, if one did."""
    variant: VariantName | None = None
    """baseline or candidate, in that experiment."""

    @pydantic.model_validator(mode="after")
    def _unique_exporter_names(self) -> PipelineSpecBase:
        names = [e.name for e in self.exporters]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"exporter names must be unique, repeated: {', '.join(duplicates)}")
        return self


class BaselinePipelineSpec(PipelineSpecBase, BaselineVariant):
    pass


class CandidatePipelineSpec(PipelineSpecBase, CandidateVariant):
    pass


class AdaptivePipelineSpec(PipelineSpecBase, AdaptiveVariant):
    pass


PipelineSpec = Annotated[
    BaselinePipelineSpec | CandidatePipelineSpec | AdaptivePipelineSpec,
    pydantic.Field(discriminator="template"),
]


class Adjustment(common.Model):
    at: datetime.datetime
    """When the keep list changed."""
    from_k: int
    """Executables keeping detail before."""
    to_k: int
    """Executables keeping detail after."""
    reason: str
    """Why, with the figures the loop saw."""


class AdaptiveStatus(common.Model):
    """What the control loop last saw and chose; the keep list is what the pipeline renders with."""

    series_budget: int
    """The budget the loop held the pipeline to."""
    current_series: int | None = None
    """Series the pipeline exported at the last reading."""
    k: int = 0
    """How many executables keep per-process detail."""
    keep_executables: list[str] = pydantic.Field(default_factory=list)
    """The executables that keep per-process detail, in the order they joined."""
    protected_attributes: list[str] = pydantic.Field(default_factory=list)
    """Process attributes the critical queries of the pipeline's experiment group by: never summed away."""
    series_per_process: dict[str, float] = pydantic.Field(default_factory=dict)
    """Series one process of each executable exported when it was last kept: what keeping it again costs."""
    observed_at: datetime.datetime | None = None
    """When the loop last read the pipeline's series."""
    last_adjustment: Adjustment | None = None
    """The last change of the keep list."""


class PipelineStatus(common.StatusBase):
    config_hash: str | None = None
    """A hash of the rendered collector config the collectors run."""
    mirrors: list[str] = pydantic.Field(
        default_factory=list,
        description="Experiments whose mirror exporter the deployed config has: each gets a copy of the input.",
    )
    adaptive: AdaptiveStatus | None = None
    """The adaptive loop's state, for an adaptive pipeline."""
    ready_replicas: int | None = None
    """Collector replicas ready to receive."""
    endpoints: dict[str, str] = pydantic.Field(default_factory=dict)
    """Where agents send: OTLP/gRPC and OTLP/HTTP addresses of the pipeline's Service."""
