"""A Store in memory, for `phoenix run --local`: the objects of one run, and nothing kept.

It behaves like the API server where the controllers can tell: `generation`
moves when the spec changes, a status patch on a stale read is refused, and
a deletion is reported to whoever watches (`drain_deleted`), since the local
runtime must stop the processes of what was deleted.
"""

from __future__ import annotations

import copy
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from phoenix_operator.runtime import base

Key = tuple[str, str, str]  # kind, namespace, name


def _key(kind: str, namespace: str | None, name: str) -> Key:
    return kind, namespace or "default", name


@dataclass
class MemoryStore:
    # called with each event as it is posted: the run shows them as progress
    on_event: Callable[[dict[str, Any], str, str, str], None] = lambda *_: None
    objects: dict[Key, dict[str, Any]] = field(default_factory=dict)
    deleted: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    _version: int = 0

    def _stamp(self, found: dict[str, Any]) -> None:
        self._version += 1
        found["metadata"]["resourceVersion"] = str(self._version)

    def get(self, api_version: str, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        with self.lock:
            found = self.objects.get(_key(kind, namespace, name))
            return copy.deepcopy(found) if found else None

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        with self.lock:
            return [copy.deepcopy(o) for (k, _, _), o in self.objects.items() if k == kind]

    def apply(self, manifest: dict[str, Any]) -> dict[str, Any]:
        metadata = manifest["metadata"]
        key = _key(manifest["kind"], metadata.get("namespace"), metadata["name"])
        with self.lock:
            found = self.objects.get(key)
            if found is None:
                found = {
                    **copy.deepcopy(manifest),
                    "metadata": {
                        **copy.deepcopy(metadata),
                        "namespace": key[1],
                        "uid": str(uuid.uuid4()),
                        "generation": 1,
                    },
                }
                self.objects[key] = found
            else:
                if manifest.get("spec") != found.get("spec"):
                    found["metadata"]["generation"] += 1
                found.update({k: copy.deepcopy(v) for k, v in manifest.items() if k not in ("metadata", "status")})
                for name in ("labels", "annotations"):
                    if name in metadata:
                        found["metadata"][name] = {**found["metadata"].get(name, {}), **metadata[name]}
            self._stamp(found)
            return copy.deepcopy(found)

    def annotate(
        self, api_version: str, kind: str, namespace: str, name: str, annotations: dict[str, str | None]
    ) -> None:
        with self.lock:
            found = self.objects.get(_key(kind, namespace, name))
            if found is None:
                return
            merged = _merge_patched(found["metadata"].get("annotations", {}), annotations)
            found["metadata"]["annotations"] = merged
            self._stamp(found)

    def delete(self, api_version: str, kind: str, namespace: str, name: str) -> None:
        with self.lock:
            found = self.objects.pop(_key(kind, namespace, name), None)
            if found is not None:
                self.deleted.append(found)

    def drain_deleted(self) -> list[dict[str, Any]]:
        """The objects deleted since the last call: what a DELETED watch would report."""
        with self.lock:
            drained, self.deleted = self.deleted, []
            return drained

    def patch_spec(self, api_version: str, kind: str, namespace: str, name: str, spec: dict[str, Any]) -> None:
        with self.lock:
            found = self.objects.get(_key(kind, namespace, name))
            if found is None:
                raise base.StoreError(f"patch {kind} {name}: not found")
            merged = _merge_patched(found.get("spec", {}), spec)
            if merged != found.get("spec"):
                found["spec"] = merged
                found["metadata"]["generation"] += 1
            self._stamp(found)

    def patch_status_if_unchanged(
        self, api_version: str, kind: str, metadata: dict[str, Any], status: dict[str, Any]
    ) -> bool:
        with self.lock:
            found = self.objects.get(_key(kind, metadata.get("namespace"), metadata["name"]))
            if found is None or found["metadata"]["resourceVersion"] != metadata["resourceVersion"]:
                return False
            found["status"] = copy.deepcopy(status)
            self._stamp(found)
            return True

    def post_event(self, obj: dict[str, Any], type_: str, reason: str, message: str) -> None:
        self.on_event(obj, type_, reason, message)

    def secret_value(self, namespace: str, name: str, key: str) -> str:
        raise base.SecretUnreadable(f"cannot read Secret {namespace}/{name}: a local run has no Secrets")


def _merge_patched(target: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """RFC 7386, as the API server applies a merge patch."""
    merged = dict(target)
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, dict):
            current = merged.get(key)
            merged[key] = _merge_patched(current if isinstance(current, dict) else {}, value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged
