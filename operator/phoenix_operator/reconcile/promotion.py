"""What promoting an experiment's candidate changes, as manifests.

The spec `kubectl phoenix promote --dry-run -o yaml` prints for a commit to
Git is exactly what `policy: auto` and `kubectl phoenix promote` leave in the
target pipeline.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from phoenix_operator import API_VERSION
from phoenix_operator.models import experiment, kinds, pipeline

# Fields the API server or controllers own; a manifest for Git leaves them out.
SERVER_METADATA = ("uid", "resourceVersion", "generation", "creationTimestamp", "managedFields", "ownerReferences")
SERVER_ANNOTATION_PREFIXES = ("kubectl.kubernetes.io/", "phoenix.io/", "mirror.phoenix.io/", "kopf.zalando.org/")


def candidate_on(candidate: pipeline.PipelineVariant, base: dict[str, Any] | None) -> dict[str, Any]:
    """The candidate's template and parameters, as a change to `base`, the parameters of the pipeline it changes.

    A parameter the candidate leaves at its default, and that its template
    has too, keeps the base's value: an experiment against a running pipeline
    says only what it changes (a larger `memoryLimitMib` or the drops the
    pipeline already makes stay as they are).
    """
    wire = candidate.to_wire()
    parameters: dict[str, Any] = dict(candidate.parameters.to_wire())
    kind = type(candidate.parameters)
    required = {f.alias or n for n, f in kind.model_fields.items() if f.is_required()}
    defaults = kind.model_validate({k: v for k, v in parameters.items() if k in required}).to_wire()
    accepted = {f.alias or n for n, f in kind.model_fields.items()}
    for key, value in (base or {}).items():
        if key in accepted and key not in required and parameters.get(key) == defaults.get(key):
            parameters[key] = value
    return {"template": wire["template"], "parameters": parameters}


def promoted_spec(obj: kinds.PhoenixExperiment, target: dict[str, Any] | None) -> dict[str, Any]:
    """The candidate's template and parameters, as a change to the target's, which they replace."""
    return candidate_on(obj.spec.candidate, ((target or {}).get("spec") or {}).get("parameters"))


def _merge_patch(old: Any, new: Any) -> Any:
    """The JSON merge patch (RFC 7386) that turns `old` into `new`: keys `new` lacks are set to null."""
    if not isinstance(old, dict) or not isinstance(new, dict):
        return new
    return {key: None for key in old if key not in new} | {key: _merge_patch(old.get(key), v) for key, v in new.items()}


def spec_patch(obj: kinds.PhoenixExperiment, target: dict[str, Any]) -> dict[str, Any]:
    """The merge patch that gives the target exactly the promoted template and parameters.

    A plain merge of `promoted_spec` would keep the target's parameters the
    candidate lacks (an adaptive `seriesBudget`, say), so the live result
    would differ from the manifest `--dry-run` prints; these are set to null.
    """
    old = target.get("spec") or {}
    promoted = promoted_spec(obj, target)
    return {
        "template": promoted["template"],
        "parameters": _merge_patch(old.get("parameters") or {}, promoted["parameters"]),
    }


def record(target: str, previous: dict[str, Any] | None, now: datetime) -> experiment.PromotionRecord:
    """What the experiment's status keeps of a promotion: the target's spec before it, if it existed."""
    return experiment.PromotionRecord(
        target=target,
        previous_spec=None if previous is None else json.dumps(previous.get("spec") or {}, sort_keys=True),
        promoted_at=now,
    )


def rollback_refusal(record: experiment.PromotionRecord | None, current: dict[str, Any] | None) -> str | None:
    """Why the promotion cannot be undone, if it cannot."""
    if record is None:
        return "nothing was promoted"
    if record.rolled_back_at is not None:
        return f"the promotion to {record.target} was already rolled back"
    if current is None:
        return f"the promoted pipeline {record.target} no longer exists"
    return None


def rollback_patch(record: experiment.PromotionRecord, current: dict[str, Any]) -> dict[str, Any] | None:
    """The merge patch that gives the target back the spec it had before the promotion;
    None when the promotion created the target, which is deleted instead."""
    if record.previous_spec is None:
        return None
    previous: dict[str, Any] = json.loads(record.previous_spec)
    patch: dict[str, Any] = _merge_patch(current.get("spec") or {}, previous)
    return patch


def target_name(obj: kinds.PhoenixExperiment) -> str:
    """The promotion target, else the baseline the experiment measured, else a new pipeline."""
    if obj.spec.promotion.target_pipeline_ref:
        return obj.spec.promotion.target_pipeline_ref
    if isinstance(obj.spec.baseline, experiment.PipelineRef):
        return obj.spec.baseline.pipeline_ref
    return f"{obj.metadata.name}-promoted"


def promoted_pipeline(obj: kinds.PhoenixExperiment, target: dict[str, Any] | None) -> dict[str, Any]:
    """The target pipeline (or a new one) running the candidate, without server-owned fields."""
    spec: dict[str, Any] = {}
    metadata: dict[str, Any] = {"name": target_name(obj), "namespace": obj.metadata.namespace or "default"}
    if target is not None:
        spec = {k: v for k, v in (target.get("spec") or {}).items() if k not in ("experimentRef", "variant")}
        kept = {k: v for k, v in target["metadata"].items() if k not in SERVER_METADATA}
        annotations = {
            k: v
            for k, v in (kept.pop("annotations", None) or {}).items()
            if not k.startswith(SERVER_ANNOTATION_PREFIXES)
        }
        metadata = kept | ({"annotations": annotations} if annotations else {})
    return {
        "apiVersion": API_VERSION,
        "kind": "PhoenixProcessPipeline",
        "metadata": metadata,
        "spec": spec | promoted_spec(obj, target),
    }
