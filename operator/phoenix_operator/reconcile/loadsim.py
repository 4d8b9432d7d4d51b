"""A LoadSim as a Job (or a local process), and its status from the Job's.

The same `phoenix loadsim run` arguments serve the Job, the local runtime and
`phoenix run --local`, so every runtime sends exactly the same load.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from phoenix_operator.models import common, kinds, loadsim
from phoenix_operator.reconcile import conditions, objects

# Time a Job may overrun its load duration (image pull, scheduling) before it is stopped.
JOB_GRACE_SECONDS = 300
# The Job's run writes its summary where the kubelet makes it the container's termination message.
JOB_SUMMARY_FILE = "/dev/termination-log"
# The Succeeded reason of a run that ended with batches some target never accepted
BATCHES_LOST = "BatchesLost"
# Where a run serves its per-target delivery counters, which the experiment's pairing check reads
METRICS_PORT = 9464


@dataclass(frozen=True)
class Delivery:
    """What a finished run says it delivered."""

    points_sent: int
    # per target: batches it accepted, and batches it never accepted
    sent_batches: dict[str, int] = field(default_factory=dict)
    failed_batches: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Observed:
    """The load's run as the runtime sees it."""

    active: bool
    succeeded: bool
    failed: bool
    started_at: str | None = None
    completed_at: str | None = None
    message: str = ""
    # once it has ended and left a readable summary
    delivery: Delivery | None = None


def delivery(summary: str) -> Delivery | None:
    """The delivery a `phoenix loadsim run` summary reports; None when the text is not one."""
    try:
        targets = json.loads(summary)["targets"]
        return Delivery(
            points_sent=sum(int(t["points_sent"]) for t in targets),
            sent_batches={str(t["target"]): int(t["requests"]) for t in targets},
            failed_batches={str(t["target"]): int(t["send_errors"]) + int(t["batches_dropped"]) for t in targets},
        )
    except (ValueError, TypeError, KeyError):
        return None


class TargetsNotReady(Exception):
    """A target pipeline does not exist yet or has no ready collectors."""


def arguments(
    profile: loadsim.LoadProfileSpec,
    targets: Sequence[str],
    duration: str | None = None,
    summary_file: str | None = None,
    metrics: tuple[str, int] | None = None,
) -> list[str]:
    """`phoenix` sub-command arguments that send `profile` to `targets`, writing the summary to `summary_file`
    and serving the run's counters on `metrics` (address, port)."""
    argv = [
        "loadsim",
        "run",
        "--profile",
        profile.profile,
        "--hosts",
        str(profile.hosts),
        "--processes-per-host",
        str(profile.processes_per_host),
        "--churn-per-minute",
        str(profile.churn_per_minute),
        "--interval",
        f"{profile.interval_seconds}s",
        "--duration",
        duration or profile.duration,
        "--seed",
        str(profile.seed),
    ]
    for target in targets:
        argv += ["--target", target]
    if summary_file is not None:
        argv += ["--summary-file", summary_file]
    if metrics is not None:
        argv += ["--metrics-address", metrics[0], "--metrics-port", str(metrics[1])]
    return argv


def resolve_targets(obj: kinds.LoadSim, pipeline_endpoints: Mapping[str, str | None]) -> list[str]:
    """OTLP/HTTP URLs of every target; pipelines are looked up in `pipeline_endpoints`."""
    urls = []
    for target in obj.spec.targets:
        if isinstance(target, loadsim.EndpointTarget):
            urls.append(target.endpoint)
            continue
        url = pipeline_endpoints.get(target.pipeline_ref)
        if not url:
            raise TargetsNotReady(f"pipeline {target.pipeline_ref} is not ready")
        urls.append(url)
    return urls


# what the operator watches its load Jobs by
JOB_LABELS = {"app.kubernetes.io/name": "loadsim", "app.kubernetes.io/managed-by": "phoenix"}


def job_name(name: str) -> str:
    return f"{name}-load"


def job(obj: kinds.LoadSim, targets: Sequence[str], image: str) -> dict[str, Any]:
    profile = obj.spec
    deadline = int(common.duration_seconds(profile.duration)) + JOB_GRACE_SECONDS
    container = {
        "name": "loadsim",
        "image": image,
        "command": [
            "phoenix",
            # Prometheus scrapes the pod over its network; the network policy admits only the monitoring namespace
            *arguments(profile, targets, summary_file=JOB_SUMMARY_FILE, metrics=("0.0.0.0", METRICS_PORT)),  # noqa: S104
        ],
        "ports": [{"name": "metrics", "containerPort": METRICS_PORT}],
        "resources": {
            "requests": {"cpu": "250m", "memory": "256Mi", "ephemeral-storage": "64Mi"},
            "limits": {"memory": "1Gi", "ephemeral-storage": "256Mi"},
        },
        "securityContext": objects.restricted_security_context(),
    }
    labels = dict(JOB_LABELS)
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": job_name(obj.metadata.name),
            "namespace": obj.metadata.namespace,
            "labels": labels,
            "annotations": dict(objects.CHOSEN_EXCEPTIONS),
            "ownerReferences": [objects.owner_reference(obj)],
        },
        "spec": {
            # a retried run would send a second, different load to collectors mid-measurement
            "backoffLimit": 0,
            "activeDeadlineSeconds": deadline,
            "template": {
                "metadata": {"labels": dict(labels)},  # a copy: YAML output has no aliases
                "spec": {
                    "restartPolicy": "Never",
                    "automountServiceAccountToken": False,
                    "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
                    "containers": [container],
                },
            },
        },
    }


def status(
    obj: kinds.LoadSim, previous: loadsim.LoadSimStatus, observed: Observed | None, waiting: str, now: datetime
) -> loadsim.LoadSimStatus:
    """Ready while the load runs; Succeeded once it ran to the end, False with BatchesLost when a target missed
    some batches, and False with LoadFailed when the run itself failed."""
    generation = obj.metadata.generation
    ready: tuple[conditions.Status, str, str]
    succeeded: tuple[conditions.Status, str, str]
    if observed is None:
        ready = ("False", "WaitingForTargets", waiting)
        succeeded = ("Unknown", "NotStarted", waiting)
    elif observed.failed and observed.delivery is not None and any(observed.delivery.failed_batches.values()):
        # the run ended and said what it lost: an experiment's pairing check weighs that, so it is no failure of
        # the load itself
        lost = _lost_batches(observed.delivery)
        ready = ("False", BATCHES_LOST, lost)
        succeeded = ("False", BATCHES_LOST, lost)
    elif observed.failed:
        ready = ("False", "LoadFailed", observed.message or "the load run failed")
        succeeded = ("False", "LoadFailed", observed.message or "the load run failed")
    elif observed.succeeded:
        ready = ("False", "Finished", "the load ran to the end")
        succeeded = ("True", "Finished", "the load ran to the end")
    else:
        ready = ("True", "Sending", "sending load") if observed.active else ("False", "Starting", "starting")
        succeeded = ("Unknown", "Running", "the load is running")
    updated = list(previous.conditions)
    for type_, (state, reason, message) in (("Ready", ready), ("Succeeded", succeeded)):
        updated = conditions.set_condition(updated, type_, state, reason, message, generation, now)
    return previous.model_copy(
        update={
            "observed_generation": generation,
            "conditions": updated,
            "job_name": job_name(obj.metadata.name),
            "started_at": observed.started_at if observed else previous.started_at,
            "completed_at": observed.completed_at if observed else previous.completed_at,
            **(_delivered(observed.delivery) if observed and observed.delivery else {}),
        }
    )


def _lost_batches(delivery: Delivery) -> str:
    lost = [
        f"{failed} of {failed + delivery.sent_batches.get(target, 0)} to {target}"
        for target, failed in delivery.failed_batches.items()
        if failed
    ]
    return "batches not delivered: " + ", ".join(lost)


def _delivered(delivery: Delivery) -> dict[str, Any]:
    return {
        "points_sent": delivery.points_sent,
        "sent_batches": dict(delivery.sent_batches),
        "failed_batches": dict(delivery.failed_batches),
    }
