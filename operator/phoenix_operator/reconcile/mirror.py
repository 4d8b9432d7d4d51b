"""Mirrored input (`load.source: mirror`): which experiments a running pipeline copies its input to.

An experiment asks by annotating the pipeline it shadows with its own name
and uid. The annotation is only a pointer: where the copy goes is read from
the experiment's own shadows, so an annotation can never send a pipeline's
data anywhere but to a live experiment's shadows of that very pipeline.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from phoenix_operator.models import experiment, kinds
from phoenix_operator.reconcile import experiment as reconcile_experiment
from phoenix_operator.render import pipeline as render_pipeline

ANNOTATION_PREFIX = "mirror.phoenix.io/"
# what a shadow's status may hold as its OTLP/HTTP address: a URL without a path
_SHADOW_URL = re.compile(r"^http://[A-Za-z0-9.\-:\[\]]+$")


def annotation_key(experiment_name: str) -> str:
    return ANNOTATION_PREFIX + experiment_name


def requested(annotations: Mapping[str, str]) -> dict[str, str]:
    """Experiment name -> uid, for each experiment that asked for a copy of the pipeline's input."""
    return {k.removeprefix(ANNOTATION_PREFIX): v for k, v in annotations.items() if k.startswith(ANNOTATION_PREFIX)}


def judge(
    pipeline_name: str,
    uid: str,
    found: kinds.PhoenixExperiment | None,
    shadow_urls: Mapping[str, str | None],
) -> tuple[render_pipeline.Mirror | None, bool]:
    """The mirror one annotation asks for, and whether the annotation is stale.

    Stale: the experiment is gone or going, was re-created (another uid), has
    ended or been aborted, or does not mirror this pipeline; the annotation is
    removed. A live request
    whose shadows have no address yet gives no mirror and is kept.
    """
    if found is None or found.metadata.uid != uid or reconcile_experiment.mirror_source(found) != pipeline_name:
        return None, True
    ended = (found.status or experiment.ExperimentStatus()).phase in reconcile_experiment.TERMINAL
    if ended or found.spec.abort or found.metadata.deletion_timestamp is not None:
        return None, True
    targets: list[tuple[str, str]] = []
    for variant in reconcile_experiment.variant_pipelines(found):
        url = shadow_urls.get(variant)
        if url is None or not _SHADOW_URL.match(url):
            return None, False
        targets.append((variant, url))
    mirror = found.spec.load.mirror
    return render_pipeline.Mirror(found.metadata.name, tuple(targets), mirror.fraction, mirror.sample_by), False
