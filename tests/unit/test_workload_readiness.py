"""How many collectors of a workload count as ready, from the status its controller writes."""

from __future__ import annotations

from typing import Any

from phoenix_operator.runtime import kubernetes


def _daemonset(**status: int) -> dict[str, Any]:
    return {
        "kind": "DaemonSet",
        "metadata": {"generation": 2},
        "spec": {"template": {"metadata": {"annotations": {"phoenix.io/config-hash": "new"}}}},
        "status": {"observedGeneration": 2, **status},
    }


def test_pods_of_the_old_config_are_not_ready_collectors() -> None:
    # three pods ready, one of them on the new template: a rollout with OnDelete, or caught mid-way
    rolling = _daemonset(desiredNumberScheduled=3, numberReady=3, updatedNumberScheduled=1)
    assert kubernetes._readiness(rolling) == (3, 1, "new")
    rolled = _daemonset(desiredNumberScheduled=3, numberReady=3, updatedNumberScheduled=3)
    assert kubernetes._readiness(rolled) == (3, 3, "new")


def test_a_status_older_than_the_spec_names_no_config() -> None:
    stale = _daemonset(desiredNumberScheduled=3, numberReady=3, updatedNumberScheduled=3)
    stale["status"]["observedGeneration"] = 1
    assert kubernetes._readiness(stale)[2] is None
