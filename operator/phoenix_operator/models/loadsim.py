"""LoadSim: a synthetic process-metrics load fanned out to every target."""

from __future__ import annotations

from typing import Annotated, Literal

import pydantic

from phoenix_operator.models import common

Profile = Literal["realistic", "high-cardinality", "process-churn", "worker-growth"]


class LoadProfileSpec(common.Model):
    """What to generate; shared by a LoadSim and an experiment's `load.loadSim`."""

    profile: Profile = "realistic"
    """realistic: 30 executables, Zipf-like. high-cardinality: 40 executables and unique command lines. process-churn:
    processes replaced over time. worker-growth: realistic, plus php-fpm workers added at a quarter of
    processesPerHost per minute that never exit."""
    hosts: Annotated[int, pydantic.Field(ge=1, le=100_000)] = 10
    """How many simulated hosts send."""
    processes_per_host: Annotated[int, pydantic.Field(ge=1, le=10_000)] = 100
    """Processes on each host."""
    churn_per_minute: Annotated[float, pydantic.Field(ge=0)] = pydantic.Field(
        default=0.0, description="Processes replaced per host per minute."
    )
    interval_seconds: Annotated[float, pydantic.Field(gt=0, le=3600)] = 10.0
    """Seconds between two reports of each host."""
    duration: common.Duration = "5m"
    """How long the load is sent."""
    seed: Annotated[int, pydantic.Field(ge=0)] = 42
    """The random seed: the same seed sends the same load."""

    @pydantic.model_validator(mode="after")
    def _positive_duration(self) -> LoadProfileSpec:
        if common.duration_seconds(self.duration) <= 0:
            raise ValueError("duration must be positive")
        return self


class PipelineTarget(common.Model):
    pipeline_ref: common.DnsLabel
    """A PhoenixProcessPipeline in the LoadSim's namespace; the load goes to its OTLP/HTTP endpoint."""


class EndpointTarget(common.Model):
    endpoint: Annotated[str, pydantic.StringConstraints(pattern=r"^https?://\S+$")]
    """Any OTLP/HTTP endpoint, e.g. http://collector.monitoring:4318."""


LoadTarget = PipelineTarget | EndpointTarget


class LoadSimSpec(LoadProfileSpec):
    targets: Annotated[list[LoadTarget], pydantic.Field(min_length=1)]
    """Where the same load is sent, each target its own copy of every batch."""


class LoadSimStatus(common.StatusBase):
    job_name: str | None = None
    """The Job that sends the load."""
    started_at: str | None = None
    """When the load started."""
    completed_at: str | None = None
    """When the load ended."""
    points_sent: int | None = pydantic.Field(
        default=None, description="Datapoints every target accepted, summed; from the finished run's summary."
    )
    sent_batches: dict[str, int] = pydantic.Field(
        default_factory=dict,
        description="Per target endpoint, the batches it accepted; equal across targets when all got the same.",
    )
    failed_batches: dict[str, int] = pydantic.Field(
        default_factory=dict,
        description="Per target endpoint, the batches it never accepted (send errors and drops); 0 is good.",
    )
