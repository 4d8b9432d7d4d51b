"""`phoenix validate` and `phoenix render`: offline checks of Phoenix manifests."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from phoenix_operator import GROUP
from phoenix_operator.cli import files, output
from phoenix_operator.models import experiment, kinds, manifests
from phoenix_operator.reconcile import experiment as reconcile_experiment
from phoenix_operator.reconcile import pipeline as reconcile_pipeline
from phoenix_operator.render import collector
from phoenix_operator.render import pipeline as render_pipeline

FileOption = Annotated[
    str,
    typer.Option(
        "--filename",
        "-f",
        help="Manifest file (YAML, several documents allowed), a directory of them (read recursively),"
        " or - for stdin. Kinds other than Phoenix's are skipped with a note.",
    ),
]
MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")


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


def _documents(path: str) -> list[tuple[str, object]]:
    """Each document with the file it came from: one file, stdin, or every manifest under a directory."""
    directory = Path(path)
    if path == "-" or not directory.is_dir():
        return [(path, document) for document in files.load_documents(path)]
    found = sorted(p for p in directory.rglob("*") if p.is_file() and p.suffix in MANIFEST_SUFFIXES)
    if not found:
        output.fail(f"error: {path}: no {', '.join(MANIFEST_SUFFIXES)} files in this directory")
    return [(str(file), document) for file in found for document in files.load_documents(str(file))]


def _phoenix_kind(document: object) -> bool:
    """Whether the document claims to be one of Phoenix's kinds; a typo in its kind is still an error."""
    api_version = document.get("apiVersion") if isinstance(document, dict) else None
    return not isinstance(api_version, str) or api_version.split("/")[0] == GROUP


def _parse_all(path: str) -> list[tuple[str, str, Parsed]]:
    """(file, KIND/name, object) for every Phoenix document; other kinds are skipped with a note."""
    problems: list[str] = []
    parsed = []
    for index, (file, document) in enumerate(_documents(path)):
        label = _label(document, index)
        if not _phoenix_kind(document):
            typer.echo(f"note: {file}: {label}: not a Phoenix kind, skipped", err=True)
            continue
        try:
            parsed.append((file, label, manifests.parse_object(document)))
        except manifests.InvalidManifest as error:
            problems.extend(f"{file}: {label}: {problem}" for problem in error.problems)
    if problems:
        output.fail(*problems)
    if not parsed:
        output.fail(f"error: {path}: no PhoenixExperiment, PhoenixProcessPipeline or LoadSim found")
    return parsed


def _reference_note(file: str, label: str, obj: Parsed, siblings: list[Parsed]) -> None:
    """Say what renders in place of a `pipelineRef` baseline: a shadow of the pipeline, or nothing."""
    if not isinstance(obj, kinds.PhoenixExperiment) or not isinstance(obj.spec.baseline, experiment.PipelineRef):
        return
    ref = obj.spec.baseline.pipeline_ref
    if any(isinstance(s, kinds.PhoenixProcessPipeline) and s.metadata.name == ref for s in siblings):
        what = f"its shadow copy of pipeline {ref} (from this input) without its exporters, then the candidate"
    else:
        what = f"only the candidate: pipeline {ref} is not in this input (the operator shadows it from the cluster)"
    typer.echo(f"note: {file}: {label}: the baseline is pipelineRef {ref}; rendering {what}", err=True)


def validate(filename: FileOption) -> None:
    """Check Phoenix manifests against the models and render their pipelines.

    When the collector (otelcol-phoenix, see PHOENIX_OTELCOL) is installed, it
    validates each rendered config too, as the operator does before deploying.
    Every problem is printed on stderr as FILE: KIND/NAME: FIELD.PATH: MESSAGE,
    and the exit code is 1 if there is any.

    Example: phoenix validate -f deploy/   (every manifest under deploy/, Roles and Secrets skipped)
    """
    problems = []
    objects = _parse_all(filename)
    siblings = [o for _, _, o in objects]
    judge = collector.installed()
    for file, label, obj in objects:
        try:
            rendered = _render(obj, siblings)
        except render_pipeline.RenderError as error:
            problems.append(f"{file}: {label}: {error}")
            continue
        refusals = [refusal for config in rendered if judge and (refusal := collector.refusal(config))]
        problems.extend(f"{file}: {label}: rejected by the collector: {refusal}" for refusal in refusals)
    if problems:
        output.fail(*problems)
    if not judge:
        typer.echo("note: no collector binary (PHOENIX_OTELCOL) to validate the rendered configs with", err=True)
    for file, label, _ in objects:
        typer.echo(f"{file}: {label}: valid")


def render(filename: FileOption) -> None:
    """Print the collector config a pipeline renders to.

    For an experiment, both variants are printed, baseline first, separated by
    a YAML document marker (---). A `pipelineRef` baseline renders as the
    operator's shadow copy when that pipeline is in the input; otherwise only
    the candidate renders, and a note on stderr says so.
    """
    texts: list[str] = []
    objects = _parse_all(filename)
    siblings = [o for _, _, o in objects]
    for file, label, obj in objects:
        _reference_note(file, label, obj, siblings)
        try:
            texts.extend(config.text for config in _render(obj, siblings))
        except render_pipeline.RenderError as error:
            output.fail(f"{file}: {label}: {error}")
    if not texts:
        output.fail(f"error: {filename}: no PhoenixExperiment or PhoenixProcessPipeline to render")
    typer.echo("---\n".join(texts), nl=False)
