"""The history of finished experiments: each verdict over time, and what the promotions still in effect save.

Pure: it reads the experiments as the API server returns them, so the
cluster stays the only store of what was decided and promoted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pydantic

from phoenix_operator.models import experiment, kinds, manifests
from phoenix_operator.reconcile import promotion


@dataclass(frozen=True)
class Entry:
    namespace: str
    name: str
    decided_at: datetime
    decision: str
    series_reduction: experiment.Interval | None
    savings: experiment.Interval | None
    target: str | None
    promoted_at: datetime | None
    rolled_back_at: datetime | None
    # what the promotion saves a month now: None unless promoted and not rolled back
    realized: float | None
    realized_from: str

    def to_json(self) -> dict[str, Any]:
        def interval(value: experiment.Interval | None) -> dict[str, Any] | None:
            return None if value is None else value.to_wire()

        def moment(value: datetime | None) -> str | None:
            return None if value is None else value.isoformat()

        return {
            "namespace": self.namespace,
            "name": self.name,
            "decidedAt": self.decided_at.isoformat(),
            "decision": self.decision,
            "seriesReduction": interval(self.series_reduction),
            "monthlySavingsUsd": interval(self.savings),
            "target": self.target,
            "promotedAt": moment(self.promoted_at),
            "rolledBackAt": moment(self.rolled_back_at),
            "realizedMonthlySavingsUsd": self.realized,
            "realizedFrom": self.realized_from,
        }


def realized(results: experiment.Results, drift: experiment.DriftStatus | None) -> tuple[float | None, str]:
    """What a promotion in effect saves a month, and what that figure rests on.

    With a drift watch, the verdict's savings are scaled by the datapoint
    reduction the watch last saw (one minus the promoted pipeline's kept
    share of its input) over the one the experiment measured: the share of
    the input it removes is what is billed less. Without one, the verdict's.
    """
    savings = results.monthly_savings_usd
    if savings is None:
        return None, "no savings measured"
    reduction = results.datapoint_reduction
    if drift is None or drift.kept_ratio is None or reduction is None or reduction.estimate <= 0:
        return savings.estimate, "the verdict"
    scale = (1 - drift.kept_ratio) / reduction.estimate
    return savings.estimate * scale, f"the drift watch: {1 - drift.kept_ratio:.1%} of the input removed now"


def _entry(body: dict[str, Any]) -> Entry | None:
    status_body = body.get("status") or {}
    try:
        status = experiment.ExperimentStatus.model_validate(status_body)
    except pydantic.ValidationError:
        return None
    if status.verdict is None:
        return None
    results = status.results or experiment.Results()
    record = status.promotion
    target = record.target if record else None
    if target is None:
        try:
            parsed = manifests.parse_object({k: body[k] for k in ("apiVersion", "kind", "metadata", "spec")})
        except (manifests.InvalidManifest, KeyError):
            parsed = None
        if isinstance(parsed, kinds.PhoenixExperiment) and status.verdict.decision == "Promote":
            target = promotion.target_name(parsed)
    in_effect = record is not None and record.rolled_back_at is None
    saved, source = realized(results, status.drift) if in_effect else (None, "not promoted")
    if record is not None and record.rolled_back_at is not None:
        source = "rolled back"
    metadata = body["metadata"]
    return Entry(
        namespace=metadata.get("namespace", "default"),
        name=metadata["name"],
        decided_at=status.verdict.decided_at,
        decision=status.verdict.decision,
        series_reduction=results.series_reduction,
        savings=results.monthly_savings_usd,
        target=target,
        promoted_at=record.promoted_at if record else None,
        rolled_back_at=record.rolled_back_at if record else None,
        realized=saved,
        realized_from=source,
    )


def entries(items: Sequence[dict[str, Any]]) -> list[Entry]:
    """The experiments with a verdict, oldest decision first."""
    found = [e for e in (_entry(item) for item in items) if e is not None]
    return sorted(found, key=lambda e: (e.decided_at, e.namespace, e.name))


def promoted_total(found: Sequence[Entry]) -> float:
    """What every promotion still in effect saves a month."""
    return sum(e.realized for e in found if e.realized is not None)


def running_total(found: Sequence[Entry]) -> list[tuple[datetime, float]]:
    """The monthly savings in effect after each promotion and rollback, in time order; a rolled-back
    promotion counts its verdict's savings while it was in effect."""
    changes: list[tuple[datetime, float]] = []
    for entry in found:
        if entry.promoted_at is None:
            continue
        amount = entry.realized if entry.realized is not None else (entry.savings.estimate if entry.savings else 0.0)
        changes.append((entry.promoted_at, amount))
        if entry.rolled_back_at is not None:
            changes.append((entry.rolled_back_at, -amount))
    total, steps = 0.0, []
    for at, amount in sorted(changes, key=lambda change: change[0]):
        total += amount
        steps.append((at, total))
    return steps
