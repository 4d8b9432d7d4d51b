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


def document_label(obj: object, index: int) -> str:
    """KIND/name as the document gives them; what could not name anything on one line is not used."""
    if isinstance(obj, dict):
        kind = obj.get("kind")
        metadata = obj.get("metadata")
        name = metadata.get("name") if isinstance(metadata, dict) else None
        return f"{kind if _nameable(kind) else 'document'}/{name if _nameable(name) else '?'}"
    return f"document {index + 1}"


def _nameable(value: object) -> bool:
    return isinstance(value, str) and value.isprintable() and bool(value) and not any(c.isspace() for c in value)


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


def _documents(path: str) -> tuple[list[tuple[str, object]], list[str]]:
    """Each document with the file it came from (one file, stdin, or every manifest under a directory),
    and a line for each that does not parse."""
    directory = Path(path)
    if path == "-" or not directory.is_dir():
        sources = [path]
    else:
        sources = [str(p) for p in sorted(directory.rglob("*")) if p.is_file() and p.suffix in MANIFEST_SUFFIXES]
        if not sources:
            output.fail(f"error: {path}: no {', '.join(MANIFEST_SUFFIXES)} files in this directory")
    found: list[tuple[str, object]] = []
    problems: list[str] = []
    for source in sources:
        documents = files.read_documents(source)
        found.extend((source, document) for document in documents.parsed)
        problems.extend(documents.problems)
    return found, problems


def _not_phoenix(document: object) -> str | None:
    """Why the document is skipped, or None for one that claims a Phoenix kind (a typo in its kind is an error)."""
    if isinstance(document, dict) and "apiVersion" not in document and "kind" not in document:
        return "not a Kubernetes manifest (no apiVersion or kind)"  # e.g. an analyze input beside the examples
    api_version = document.get("apiVersion") if isinstance(document, dict) else None
    if isinstance(api_version, str) and api_version.split("/")[0] != GROUP:
        return "not a Phoenix kind"
    return None


def _parse_all(path: str) -> tuple[list[tuple[str, str, Parsed]], list[str]]:
    """(file, KIND/name, object) for every Phoenix document that parses, and a line for each problem.

    Other kinds are skipped with a note; a bad document spoils none of the others.
    """
    documents, problems = _documents(path)
    parsed = []
    for index, (file, document) in enumerate(documents):
        label = document_label(document, index)
        skipped = _not_phoenix(document)
        if skipped:
            typer.echo(f"note: {file}: {label}: {skipped}, skipped", err=True)
            continue
        try:
            parsed.append((file, label, manifests.parse_object(document)))
        except manifests.InvalidManifest as error:
            problems.extend(f"{file}: {label}: {problem}" for problem in error.problems)
    if not parsed and not problems:
        problems.append(f"error: {path}: no PhoenixExperiment, PhoenixProcessPipeline or LoadSim found")
    return parsed, problems


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
    Every problem is printed on stderr as FILE: KIND/NAME: FIELD.PATH: MESSAGE;
    the documents that pass are still listed as valid, and the exit code is 1
    if there is any problem.

    Example: phoenix validate -f deploy/   (every manifest under deploy/, Roles and Secrets skipped)
    """
    objects, problems = _parse_all(filename)
    siblings = [o for _, _, o in objects]
    judge = collector.installed()
    valid = []
    for file, label, obj in objects:
        try:
            rendered = _render(obj, siblings)
        except render_pipeline.RenderError as error:
            problems.append(f"{file}: {label}: {error}")
            continue
        refusals = [refusal for config in rendered if judge and (refusal := collector.refusal(config))]
        problems.extend(f"{file}: {label}: rejected by the collector: {refusal}" for refusal in refusals)
        if not refusals:
            valid.append(f"{file}: {label}: valid")
    if not judge:
        typer.echo("note: no collector binary (PHOENIX_OTELCOL) to validate the rendered configs with", err=True)
    for line in valid:
        typer.echo(line)
    if problems:
        output.fail(*problems)


def render(filename: FileOption) -> None:
    """Print the collector config a pipeline renders to.

    For an experiment, both variants are printed, baseline first, separated by
    a YAML document marker (---). A `pipelineRef` baseline renders as the
    operator's shadow copy when that pipeline is in the input; otherwise only
    the candidate renders, and a note on stderr says so.
    """
    texts: list[str] = []
    objects, problems = _parse_all(filename)
    if problems:
        output.fail(*problems)
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
