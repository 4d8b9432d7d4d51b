"""Conditions as the Kubernetes API conventions define them.

A condition's lastTransitionTime moves only when its status flips, so a
reconcile that finds nothing new writes an identical status and the patch is
skipped.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Literal

from phoenix_operator.models import common

Status = Literal["True", "False", "Unknown"]


def set_condition(
    conditions: Sequence[common.Condition],
    type_: str,
    status: Status,
    reason: str,
    message: str,
    generation: int | None,
    now: datetime,
) -> list[common.Condition]:
    previous = next((c for c in conditions if c.type == type_), None)
    changed_at = previous.last_transition_time if previous and previous.status == status else now
    updated = common.Condition(
        type=type_,
        status=status,
        reason=reason,
        message=message,
        observed_generation=generation,
        last_transition_time=changed_at,
    )
    if previous is None:
        return [*conditions, updated]
    # in place: a reordered list would be a status change with nothing new in it
    return [updated if c.type == type_ else c for c in conditions]


def find(conditions: Sequence[common.Condition], type_: str) -> common.Condition | None:
    return next((c for c in conditions if c.type == type_), None)
