"""Where objects live and where collectors and loads run: the two seams of every driver.

A `Store` holds the three kinds and their children: the API server for the
operator, memory for `phoenix run --local`. A `Runtime` runs what a pipeline
or a LoadSim asks for: Kubernetes workloads, or processes on this machine.
The controllers are written against these protocols only, so every driver
runs the same code and differs only in the objects it is handed.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from phoenix_operator.models import kinds
from phoenix_operator.reconcile import loadsim as reconcile_loadsim
from phoenix_operator.reconcile import pipeline as reconcile_pipeline
from phoenix_operator.render import pipeline as render_pipeline


class StoreError(Exception):
    """The store failed a request (the API server is unreachable, or refused); it may pass."""


class SecretUnreadable(Exception):
    """A Secret an object refers to is missing, forbidden or lacks the key."""


class Store(Protocol):
    """Objects by apiVersion, kind, namespace and name, as plain JSON; failures raise StoreError."""

    def get(self, api_version: str, kind: str, namespace: str, name: str) -> dict[str, Any] | None: ...

    def apply(self, manifest: dict[str, Any]) -> dict[str, Any]:
        """Create or update the object with this manifest's fields; its status is kept."""
        ...

    def delete(self, api_version: str, kind: str, namespace: str, name: str) -> None: ...

    def patch_spec(self, api_version: str, kind: str, namespace: str, name: str, spec: dict[str, Any]) -> None:
        """Apply `spec` as a JSON merge patch (RFC 7386) to the object's spec: null removes a key."""
        ...

    def annotate(
        self, api_version: str, kind: str, namespace: str, name: str, annotations: dict[str, str | None]
    ) -> None:
        """Merge `annotations` into the object's: None removes a key; a missing object is left missing."""
        ...

    def patch_status_if_unchanged(
        self, api_version: str, kind: str, metadata: dict[str, Any], status: dict[str, Any]
    ) -> bool:
        """Merge `status` into the object as it was read; False if it has changed since."""
        ...

    def post_event(self, obj: dict[str, Any], type_: str, reason: str, message: str) -> None: ...

    def secret_value(self, namespace: str, name: str, key: str) -> str:
        """A Secret's key, decoded; raises SecretUnreadable."""
        ...


class Runtime(Protocol):
    """Runs a pipeline's collectors and a LoadSim's load, and says how they are doing."""

    def apply_pipeline(
        self, obj: kinds.PhoenixProcessPipeline, rendered: render_pipeline.RenderedConfig
    ) -> reconcile_pipeline.Observed: ...

    def observe_pipeline(self, obj: kinds.PhoenixProcessPipeline) -> reconcile_pipeline.Observed | None:
        """The collectors' last known state; None when nothing has been seen of them yet."""
        ...

    def observe_load(self, obj: kinds.LoadSim) -> reconcile_loadsim.Observed | None:
        """The load's run; None when it has not been started."""
        ...

    def apply_load(self, obj: kinds.LoadSim, targets: list[str]) -> reconcile_loadsim.Observed:
        """Start the load's run, sending to `targets`."""
        ...


@runtime_checkable
class ProcessRuntime(Runtime, Protocol):
    """A runtime whose collectors and loads are its own processes.

    Nothing reports their readiness, so it is polled, and nothing removes them
    with their object, so they are stopped when it is deleted.
    """

    def delete_pipeline(self, obj: kinds.PhoenixProcessPipeline) -> None: ...

    def delete_load(self, obj: kinds.LoadSim) -> None: ...


@runtime_checkable
class WorkloadRuntime(Runtime, Protocol):
    """A runtime whose collectors are workloads that report their own readiness in watch events."""

    def record_workload(self, event_type: str, workload: dict[str, Any]) -> str | None:
        """Remember a workload's (or its Service's EndpointSlice's) newest state.

        Returns the owning pipeline's name if its readiness changed.
        """
        ...

    def record_job(self, event_type: str, job: dict[str, Any]) -> None:
        """Remember a load Job's newest state, so a running load is observed without a request."""
        ...
