"""Reading an object and writing its status and events the same way for every kind."""

from __future__ import annotations

from datetime import datetime
from typing import Any, TypeVar

import kopf

from phoenix_operator.models import common, kinds, manifests
from phoenix_operator.reconcile import conditions
from phoenix_operator.runtime import base as runtime_base

KindT = TypeVar("KindT", kinds.PhoenixExperiment, kinds.PhoenixProcessPipeline, kinds.LoadSim)
# How soon a step that failed on the API server is tried again.
RETRY_SECONDS = 5.0


def parsed(
    body: Any, patch: kopf.Patch, kind: type[KindT], status_type: type[common.StatusBase], condition: str, now: datetime
) -> KindT | None:
    """The object, or None after reporting why the models reject it."""
    try:
        obj = manifests.parse_stored(body)
    except manifests.InvalidManifest as error:
        report_invalid(body, patch, status_type, condition, "; ".join(str(p) for p in error.problems), now)
        return None
    assert isinstance(obj, kind)
    return obj


def write(body: Any, patch: kopf.Patch, status: common.StatusBase) -> bool:
    """Patch the status only if it changed; conditions keep their transition times."""
    wire = status.to_wire()
    if wire == dict(body.get("status") or {}):
        return False
    patch["status"] = wire
    return True


def report_invalid(
    body: Any, patch: kopf.Patch, status_type: type[common.StatusBase], condition: str, message: str, now: datetime
) -> None:
    """An object the models reject gets a False condition and a Warning event, and nothing else."""
    old = manifests.stored_status(body, status_type)
    generation = body.get("metadata", {}).get("generation")
    updated = conditions.set_condition(old.conditions, condition, "False", "InvalidSpec", message, generation, now)
    if write(body, patch, old.model_copy(update={"conditions": updated, "observed_generation": generation})):
        kopf.warn(body, reason="InvalidSpec", message=message)


def retry_later(error: runtime_base.StoreError) -> kopf.TemporaryError:
    """The API server failed a request: the step runs again after a pause."""
    return kopf.TemporaryError(str(error), delay=RETRY_SECONDS)


def deleted_object(event: Any) -> kinds.PhoenixExperiment | kinds.PhoenixProcessPipeline | kinds.LoadSim | None:
    """The object of a DELETED watch event, if it is one Phoenix can read.

    Deletions are seen as watch events rather than through a finalizer: in
    Kubernetes the owners' garbage collection removes the children, and only
    a process runtime has processes to stop.
    """
    if event["type"] != "DELETED":
        return None
    try:
        return manifests.parse_stored(event["object"])
    except manifests.InvalidManifest:
        return None
