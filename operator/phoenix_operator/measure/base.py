"""The measurement provider interface, in the manner of Argo Rollouts' metric providers.

The driver asks one narrow question: what did both variants of an experiment
do over a window of sample times, and what did a LoadSim deliver to each. It never sees PromQL. A provider never
raises for bad data: an unreachable backend, an invalid query or an empty
result is a Measurement with phase Error or Inconclusive and a message.
Prometheus is the first provider; `providers.provider_for` is the one place
that picks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

from phoenix_analysis import contract
from phoenix_operator.models import experiment
from phoenix_operator.reconcile import experiment as reconcile_experiment

Phase = Literal["Successful", "Inconclusive", "Error"]


@dataclass(frozen=True)
class Measurement:
    """Each variant's figures and each critical query's values, aligned on `timestamps`."""

    phase: Phase
    message: str = ""
    baseline: contract.Variant | None = None
    candidate: contract.Variant | None = None
    critical_queries: list[contract.CriticalQuery] = field(default_factory=list)
    timestamps: list[float] = field(default_factory=list)

    @property
    def unreachable(self) -> bool:
        """The backend did not answer, as opposed to answering without the data."""
        return self.phase == "Error"


class Provider(Protocol):
    def measure(
        self,
        experiment: str,
        queries: Sequence[experiment.CriticalQuery],
        window: reconcile_experiment.Window,
        load_targets: Mapping[str, str] | None = None,
    ) -> Measurement: ...
