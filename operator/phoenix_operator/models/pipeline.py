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
    aggregate_away_attributes: list[common.AttributeName] = pydantic.Field(default_factory=list)
    keep_processes: KeepProcesses | None = None


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
    parameters: BaselineParameters = pydantic.Field(default_factory=BaselineParameters)


class CandidateVariant(common.Model):
    template: Literal["candidate"]
    parameters: CandidateParameters = pydantic.Field(default_factory=CandidateParameters)


class AdaptiveVariant(common.Model):
    template: Literal["adaptive"]
    parameters: AdaptiveParameters


PipelineVariant = Annotated[
    BaselineVariant | CandidateVariant | AdaptiveVariant,
    pydantic.Field(discriminator="template"),
]


class Toleration(common.Model):
    key: str | None = None
    operator: Literal["Exists", "Equal"] | None = None
    value: str | None = None
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = None
    toleration_seconds: int | None = None


class ResourceRequirements(common.Model):
    requests: dict[str, common.Quantity] = pydantic.Field(default_factory=dict)
    limits: dict[str, common.Quantity] = pydantic.Field(default_factory=dict)


class Autoscaling(common.Model):
    model_config = common.cel_rules(("self.minReplicas <= self.maxReplicas", "minReplicas must not exceed maxReplicas"))

    min_replicas: Annotated[int, pydantic.Field(ge=1, le=100)] = 1
    max_replicas: Annotated[int, pydantic.Field(ge=1, le=100)]
    target_cpu_utilization: Annotated[int, pydantic.Field(ge=1, le=100)] = 80

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
    mode: Literal["deployment", "daemonset"] = "deployment"
    replicas: Annotated[int, pydantic.Field(ge=1, le=100)] = 1
    autoscaling: Autoscaling | None = pydantic.Field(
        default=None,
        description="A HorizontalPodAutoscaler scales the collector Deployment on CPU; replicas is then only its"
        " size when first created. In a cluster only.",
    )
    resources: ResourceRequirements = pydantic.Field(
        default_factory=lambda: ResourceRequirements(
            requests={"cpu": "100m", "memory": "256Mi"}, limits={"memory": "1Gi"}
        )
    )
    node_selector: dict[str, str] = pydantic.Field(default_factory=dict)
    tolerations: list[Toleration] = pydantic.Field(default_factory=list)

    @pydantic.model_validator(mode="after")
    def _autoscaled_deployment(self) -> CollectorSpec:
        if self.autoscaling is not None and self.mode != "deployment":
            raise ValueError("autoscaling needs mode deployment: a DaemonSet runs one collector per node")
        return self


class HeaderValueFrom(common.Model):
    secret_key_ref: common.SecretKeyRef


class ExporterHeader(common.Model):
    """A header on an extra exporter; its value comes only from a Secret key."""

    name: Annotated[str, pydantic.StringConstraints(pattern=r"^[A-Za-z0-9-]+$", max_length=128)]
    value_from: HeaderValueFrom


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
    type: Literal["otlphttp", "otlp", "newrelic"]
    endpoint: (
        Annotated[
            str,
            pydantic.StringConstraints(pattern=r"^https?://[A-Za-z0-9.\-:\[\]]+(/[A-Za-z0-9._~\-/]*)?$"),
        ]
        | None
    ) = pydantic.Field(default=None, description="Required, except for newrelic (default " + NEW_RELIC_ENDPOINT + ").")
    # bounded, so that the API server can bound the cost of the rules above
    headers: list[ExporterHeader] = pydantic.Field(default_factory=list, max_length=16)

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
    exporters: list[ExtraExporter] = pydantic.Field(default_factory=list, max_length=8)
    experiment_ref: common.DnsLabel | None = None
    variant: VariantName | None = None

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
    from_k: int
    to_k: int
    reason: str


class AdaptiveStatus(common.Model):
    """What the control loop last saw and chose; the keep list is what the pipeline renders with."""

    series_budget: int
    current_series: int | None = None
    k: int = 0
    keep_executables: list[str] = pydantic.Field(default_factory=list)
    # process attributes the critical queries of the pipeline's experiment group by: never summed away
    protected_attributes: list[str] = pydantic.Field(default_factory=list)
    # series one process of each executable exported when it was last kept: what keeping it again costs
    series_per_process: dict[str, float] = pydantic.Field(default_factory=dict)
    observed_at: datetime.datetime | None = None
    last_adjustment: Adjustment | None = None


class PipelineStatus(common.StatusBase):
    config_hash: str | None = None
    mirrors: list[str] = pydantic.Field(
        default_factory=list,
        description="Experiments whose mirror exporter the deployed config has: each gets a copy of the input.",
    )
    adaptive: AdaptiveStatus | None = None
    ready_replicas: int | None = None
    endpoints: dict[str, str] = pydantic.Field(default_factory=dict)
