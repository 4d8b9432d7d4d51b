"""What every handler shares, carried in kopf's memo."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from phoenix_operator.handlers import workqueue
from phoenix_operator.models import kinds, manifests
from phoenix_operator.reconcile import experiment as reconcile_experiment
from phoenix_operator.reconcile import loadsim as reconcile_loadsim
from phoenix_operator.reconcile import pipeline as reconcile_pipeline
from phoenix_operator.render import pipeline as render_pipeline
from phoenix_operator.runtime import kubernetes as runtime_kubernetes


class Runtime(Protocol):
    """Where collectors and loads run: Kubernetes workloads or local processes."""

    # Local processes send no events when they become ready, so their readiness is polled.
    polls_readiness: ClassVar[bool]

    def apply_pipeline(
        self, obj: kinds.PhoenixProcessPipeline, rendered: render_pipeline.RenderedConfig
    ) -> reconcile_pipeline.Observed: ...

    def observe_pipeline(self, obj: kinds.PhoenixProcessPipeline) -> reconcile_pipeline.Observed | None: ...

    def delete_pipeline(self, obj: kinds.PhoenixProcessPipeline) -> None: ...

    def apply_load(self, obj: kinds.LoadSim, targets: list[str]) -> reconcile_loadsim.Observed: ...

    def delete_load(self, obj: kinds.LoadSim) -> None: ...


@dataclass
class Context:
    api: runtime_kubernetes.Api
    runtime: Runtime
    prometheus_url: str | None
    measure_step_seconds: float
    limits: reconcile_experiment.Limits
    # pipelines to render, apply and report, and the tasks working through them
    deploys: workqueue.WorkQueue
    deploy_workers: list[asyncio.Task[None]] = field(default_factory=list)
    last_measured: dict[str, float] = field(default_factory=dict)
    phases: dict[str, str] = field(default_factory=dict)


def context(memo: Any) -> Context:
    found: Context = memo["context"]
    return found


def parse(body: Any) -> kinds.PhoenixExperiment | kinds.PhoenixProcessPipeline | kinds.LoadSim:
    """The object without its status, which the operator writes and reads separately."""
    return manifests.parse_object(
        {
            "apiVersion": body["apiVersion"],
            "kind": body["kind"],
            "metadata": dict(body["metadata"]),
            "spec": dict(body.get("spec") or {}),
        }
    )


def deleted_object(event: Any) -> kinds.PhoenixExperiment | kinds.PhoenixProcessPipeline | kinds.LoadSim | None:
    """The object of a DELETED watch event, if it is one Phoenix can read.

    Deletions are seen as watch events rather than through a finalizer: in
    Kubernetes the owners' garbage collection removes the children, and only
    the local runtime has processes to stop.
    """
    if event["type"] != "DELETED":
        return None
    try:
        return parse(event["object"])
    except manifests.InvalidManifest:
        return None
