"""The three kinds as whole objects, and what the CRDs say about each.

One table drives CRD generation, manifest validation and the CLI, so a new
printer column or short name is added in one place.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal

import pydantic

from phoenix_operator import API_VERSION
from phoenix_operator.models import common, experiment, loadsim, pipeline


class ObjectMeta(pydantic.BaseModel):
    """The part of metadata Phoenix reads; the API server owns the rest."""

    model_config = pydantic.ConfigDict(extra="ignore", frozen=True)

    name: common.DnsLabel
    namespace: common.DnsLabel | None = None
    labels: dict[str, str] = pydantic.Field(default_factory=dict)
    annotations: dict[str, str] = pydantic.Field(default_factory=dict)
    generation: int | None = None
    uid: str | None = None
    # set once a deletion waits for finalizers: the object is going
    deletion_timestamp: datetime | None = pydantic.Field(default=None, alias="deletionTimestamp")


class _Object(common.Model):
    api_version: Literal["phoenix.io/v1alpha1"]
    metadata: ObjectMeta


class PhoenixExperiment(_Object):
    kind: Literal["PhoenixExperiment"]
    spec: experiment.ExperimentSpec
    status: experiment.ExperimentStatus | None = None


class PhoenixProcessPipeline(_Object):
    kind: Literal["PhoenixProcessPipeline"]
    spec: pipeline.PipelineSpec
    status: pipeline.PipelineStatus | None = None


class LoadSim(_Object):
    kind: Literal["LoadSim"]
    spec: loadsim.LoadSimSpec
    status: loadsim.LoadSimStatus | None = None


PhoenixObject = Annotated[PhoenixExperiment | PhoenixProcessPipeline | LoadSim, pydantic.Field(discriminator="kind")]


@dataclass(frozen=True)
class PrinterColumn:
    name: str
    json_path: str
    type: str = "string"
    priority: int = 0


@dataclass(frozen=True)
class Kind:
    kind: str
    plural: str
    short_name: str
    spec_type: Any
    status_type: type[common.StatusBase]
    columns: tuple[PrinterColumn, ...]
    description: str

    @property
    def crd_name(self) -> str:
        return f"{self.plural}.{API_VERSION.split('/')[0]}"


_AGE = PrinterColumn("Age", ".metadata.creationTimestamp", "date")

KINDS: tuple[Kind, ...] = (
    Kind(
        "PhoenixExperiment",
        "phoenixexperiments",
        "pexp",
        experiment.ExperimentSpec,
        experiment.ExperimentStatus,
        (
            PrinterColumn("Phase", ".status.phase"),
            PrinterColumn("Decision", ".status.verdict.decision"),
            PrinterColumn("Reduction", ".status.results.seriesReduction.estimate", "number"),
            PrinterColumn("Savings/mo", ".status.results.monthlySavingsUsd.estimate", "number"),
            _AGE,
        ),
        "An A/B test of a baseline and a candidate collector pipeline on the same input, ending in a verdict:"
        " Promote, Reject or Inconclusive.",
    ),
    Kind(
        "PhoenixProcessPipeline",
        "phoenixprocesspipelines",
        "ppp",
        pipeline.PipelineSpec,
        pipeline.PipelineStatus,
        (
            PrinterColumn("Template", ".spec.template"),
            PrinterColumn("Variant", ".spec.variant"),
            PrinterColumn("Ready", '.status.conditions[?(@.type=="Ready")].status'),
            # an adaptive pipeline's loop: blank for the other templates
            PrinterColumn("Series", ".status.adaptive.currentSeries", "integer"),
            PrinterColumn("Budget", ".status.adaptive.seriesBudget", "integer"),
            PrinterColumn("K", ".status.adaptive.k", "integer"),
            _AGE,
        ),
        "One OpenTelemetry Collector pipeline for process metrics, rendered from a template and run by the operator.",
    ),
    Kind(
        "LoadSim",
        "loadsims",
        "lsim",
        loadsim.LoadSimSpec,
        loadsim.LoadSimStatus,
        (
            PrinterColumn("Profile", ".spec.profile"),
            PrinterColumn("Hosts", ".spec.hosts", "integer"),
            PrinterColumn("Ready", '.status.conditions[?(@.type=="Ready")].status'),
            _AGE,
        ),
        "A synthetic process-metrics load: the same OTLP batches sent to every target.",
    ),
)


def by_kind(name: str) -> Kind | None:
    return next((k for k in KINDS if k.kind == name), None)
