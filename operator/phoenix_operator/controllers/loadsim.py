"""One step of a LoadSim: once its target pipelines are ready, run the load and mirror its state."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from phoenix_operator import API_VERSION
from phoenix_operator.models import common, kinds, loadsim, manifests, pipeline
from phoenix_operator.reconcile import conditions
from phoenix_operator.reconcile import loadsim as reconcile_loadsim
from phoenix_operator.runtime import base as runtime_base


@dataclass(frozen=True)
class Outcome:
    status: loadsim.LoadSimStatus

    @property
    def failure(self) -> common.Condition | None:
        """The Succeeded condition of a load that failed or lost batches, to post as a Warning when it is new."""
        succeeded = conditions.find(self.status.conditions, "Succeeded")
        return succeeded if succeeded is not None and succeeded.status == "False" else None


def step(
    store: runtime_base.Store,
    runtime: runtime_base.Runtime,
    obj: kinds.LoadSim,
    previous: loadsim.LoadSimStatus,
    now: datetime,
) -> Outcome | None:
    """The load's next status; None once it has finished, since a load runs once."""
    succeeded = conditions.find(previous.conditions, "Succeeded")
    if succeeded and succeeded.status != "Unknown":
        return None
    # the targets matter only to start the load: a running one is only observed
    observed = runtime.observe_load(obj)
    if observed is None:
        try:
            targets = reconcile_loadsim.resolve_targets(obj, _ready_endpoints(store, obj))
            observed = runtime.apply_load(obj, targets)
        except reconcile_loadsim.TargetsNotReady as waiting:
            return Outcome(reconcile_loadsim.status(obj, previous, None, str(waiting), now))
    return Outcome(reconcile_loadsim.status(obj, previous, observed, "", now))


def _ready_endpoints(store: runtime_base.Store, obj: kinds.LoadSim) -> dict[str, str | None]:
    endpoints: dict[str, str | None] = {}
    for target in obj.spec.targets:
        if not isinstance(target, loadsim.PipelineTarget):
            continue
        found = store.get(
            API_VERSION, "PhoenixProcessPipeline", obj.metadata.namespace or "default", target.pipeline_ref
        )
        pipeline_status = manifests.stored_status(found or {}, pipeline.PipelineStatus)
        ready = conditions.find(pipeline_status.conditions, "Ready")
        endpoints[target.pipeline_ref] = (
            pipeline_status.endpoints.get("otlpHttp") if ready and ready.status == "True" else None
        )
    return endpoints
