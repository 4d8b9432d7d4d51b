"""Writing statuses and events the same way for every kind."""

from __future__ import annotations

from datetime import datetime
from typing import Any, TypeVar

import kopf

from phoenix_operator.models import common, manifests
from phoenix_operator.reconcile import conditions

StatusT = TypeVar("StatusT", bound=common.StatusBase)


def previous(body: Any, status_type: type[StatusT]) -> StatusT:
    """The stored status; one the models no longer accept is replaced, not fatal."""
    try:
        return status_type.model_validate(dict(body.get("status") or {}))
    except ValueError:
        return status_type()


def write(body: Any, patch: kopf.Patch, status: common.StatusBase) -> bool:
    """Patch the status only if it changed; conditions keep their transition times."""
    wire = status.to_wire()
    if wire == dict(body.get("status") or {}):
        return False
    patch["status"] = wire
    return True


def invalid_message(error: manifests.InvalidManifest) -> str:
    return "; ".join(str(p) for p in error.problems)


def report_invalid(
    body: Any, patch: kopf.Patch, status_type: type[StatusT], condition: str, message: str, now: datetime
) -> None:
    """An object the models reject gets a False condition and a Warning event, and nothing else."""
    old = previous(body, status_type)
    generation = body.get("metadata", {}).get("generation")
    updated = conditions.set_condition(old.conditions, condition, "False", "InvalidSpec", message, generation, now)
    if write(body, patch, old.model_copy(update={"conditions": updated, "observed_generation": generation})):
        kopf.warn(body, reason="InvalidSpec", message=message)
