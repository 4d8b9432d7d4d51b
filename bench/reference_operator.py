"""The reference for bench.operator_scale: a minimal kopf operator that only
writes a status on each PhoenixProcessPipeline, with the same kopf settings
(annotation storages, standalone) and nothing else.

    python -m bench.reference_operator NAMESPACE
"""

from __future__ import annotations

import sys
from typing import Any

import kopf


@kopf.on.create("phoenix.io", "v1alpha1", "phoenixprocesspipelines")
def created(patch: kopf.Patch, meta: kopf.Meta, **_: Any) -> None:
    patch["status"] = {"observedGeneration": meta.get("generation"), "configHash": "reference"}


def main() -> None:
    settings = kopf.OperatorSettings()
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="phoenix.io")
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix="phoenix.io", key="last-handled-configuration"
    )
    settings.execution.max_workers = 16
    kopf.configure(quiet=True)
    kopf.run(settings=settings, standalone=True, namespaces=[sys.argv[1]])


if __name__ == "__main__":
    main()
