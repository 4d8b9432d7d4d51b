"""Both variants of an experiment, rendered the same way the operator deploys them."""

from __future__ import annotations

from collections.abc import Mapping

from phoenix_operator.models import experiment
from phoenix_operator.render import pipeline as render_pipeline


def variant_specs(spec: experiment.ExperimentSpec) -> dict[str, render_pipeline.AnyVariant]:
    """The `{template, parameters}` of each variant the experiment defines itself.

    A baseline given as `pipelineRef` is an existing pipeline with its own
    manifest, so it is not part of the result.
    """
    variants: dict[str, render_pipeline.AnyVariant] = {}
    if not isinstance(spec.baseline, experiment.PipelineRef):
        variants["baseline"] = spec.baseline
    variants["candidate"] = spec.candidate
    return variants


def render_variants(
    name: str,
    spec: experiment.ExperimentSpec,
    listen: Mapping[str, render_pipeline.Listen] | None = None,
) -> dict[str, render_pipeline.RenderedConfig]:
    return {
        variant: render_pipeline.render(
            variant_spec,
            experiment=name,
            variant=variant,
            listen=(listen or {}).get(variant, render_pipeline.Listen()),
        )
        for variant, variant_spec in variant_specs(spec).items()
    }
