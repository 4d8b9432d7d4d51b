"""Conventions every kind's objects follow: ownership and the restricted security context.

Shared here so that the per-kind reconcile modules never import each other.
"""

from __future__ import annotations

from typing import Any

from phoenix_operator import API_VERSION
from phoenix_operator.models import kinds


def owner_reference(obj: kinds.PhoenixExperiment | kinds.PhoenixProcessPipeline | kinds.LoadSim) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": obj.kind,
        "name": obj.metadata.name,
        "uid": obj.metadata.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def restricted_security_context() -> dict[str, Any]:
    """The container half of the Pod Security Standards' restricted profile."""
    return {
        "runAsNonRoot": True,
        "readOnlyRootFilesystem": True,
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
