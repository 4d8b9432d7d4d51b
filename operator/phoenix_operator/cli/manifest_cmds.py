"""`phoenix validate` and `phoenix render`: offline checks of Phoenix manifests."""

from __future__ import annotations

from typing import Annotated

import typer

from phoenix_operator.cli import files, output
from phoenix_operator.models import experiment, kinds, manifests
from phoenix_operator.reconcile import experiment as reconcile_experiment
from phoenix_operator.reconcile import pipeline as reconcile_pipeline
from phoenix_operator.render import collector
from phoenix_operator.render import pipeline as render_pipeline

FileOption = Annotated[
    str,
    typer.Option("--filename", "-f", help="Manifest file (YAML, several documents allowed); - reads stdin."),
]


def _label(obj: object, index: int) -> str:
    if isinstance(obj, dict):
        name = (obj.get("metadata") or {}).get("name", "?") if isinstance(obj.get("metadata"), dict) else "?"
        return f"{obj.get('kind', 'document')}/{name}"
    return f"document {index + 1}"


Parsed = kinds.PhoenixExperiment | kinds.PhoenixProcessPipeline | kinds.LoadSim


def _render(obj: Parsed, siblings: list[Parsed]) -> list[render_pipeline.RenderedConfig]:
    """Collector configs of the object, in variant order; LoadSims have none.

    An experiment's `pipelineRef` baseline is shadowed when that pipeline is
    in the same file, as the operator would; otherwise only its candidate renders.
    """
    if isinstance(obj, kinds.PhoenixExperiment):
        referenced = next(
            (
                s
                for s in siblings
                if isinstance(s, kinds.PhoenixProcessPipeline)
                and isinstance(obj.spec.baseline, experiment.PipelineRef)
                and s.metadata.name == obj.spec.baseline.pipeline_ref
            ),
            None,
        )
        # the pipelines the operator would create for it, as it would render them
        created = [manifests.parse_object(c) for c in reconcile_experiment.children(obj, referenced)]
        return [reconcile_pipeline.render(p) for p in created if isinstance(p, kinds.PhoenixProcessPipeline)]
    if isinstance(obj, kinds.PhoenixProcessPipeline):
        return [reconcile_pipeline.render(obj)]
    return []


def _parse_all(path: str) -> list[tuple[str, Parsed]]:
    problems: list[str] = []
    parsed = []
    for index, document in enumerate(files.load_documents(path)):
        label = _label(document, index)
        try:
            parsed.append((label, manifests.parse_object(document)))
        except manifests.InvalidManifest as error:
            problems.extend(f"{path}: {label}: {problem}" for problem in error.problems)
    if problems:
        output.fail(*problems)
    return parsed


def validate(filename: FileOption) -> None:
    """Check Phoenix manifests against the models and render their pipelines.

    When the collector (otelcol-phoenix, see PHOENIX_OTELCOL) is installed, it
    validates each rendered config too, as the operator does before deploying.
    Every problem is printed on stderr as FILE: KIND/NAME: FIELD.PATH: MESSAGE,
    and the exit code is 1 if there is any.
    """
    problems = []
    objects = _parse_all(filename)
    judge = collector.installed()
    for label, obj in objects:
        try:
            rendered = _render(obj, [o for _, o in objects])
        except render_pipeline.RenderError as error:
            problems.append(f"{filename}: {label}: {error}")
            continue
        refusals = [refusal for config in rendered if judge and (refusal := collector.refusal(config))]
        problems.extend(f"{filename}: {label}: rejected by the collector: {refusal}" for refusal in refusals)
    if problems:
        output.fail(*problems)
    if not judge:
        typer.echo("note: no collector binary (PHOENIX_OTELCOL) to validate the rendered configs with", err=True)
    for label, _ in objects:
        typer.echo(f"{filename}: {label}: valid")


def render(filename: FileOption) -> None:
    """Print the collector config a pipeline renders to.

    For an experiment, both variants are printed, baseline first, separated by
    a YAML document marker (---).
    """
    texts: list[str] = []
    objects = _parse_all(filename)
    for label, obj in objects:
        try:
            texts.extend(config.text for config in _render(obj, [o for _, o in objects]))
        except render_pipeline.RenderError as error:
            output.fail(f"{filename}: {label}: {error}")
    if not texts:
        output.fail(f"error: {filename}: no PhoenixExperiment or PhoenixProcessPipeline to render")
    typer.echo("---\n".join(texts), nl=False)
