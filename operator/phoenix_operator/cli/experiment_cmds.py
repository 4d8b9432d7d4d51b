"""`kubectl phoenix list|status|watch|report|promote|abort`: experiments on a cluster."""

from __future__ import annotations

import enum
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import pydantic
import typer

from phoenix_operator.cli import cluster, output
from phoenix_operator.models import common, experiment, kinds, manifests
from phoenix_operator.reconcile import drift as reconcile_drift
from phoenix_operator.reconcile import experiment as reconcile_experiment
from phoenix_operator.reconcile import promotion

NameArgument = Annotated[str, typer.Argument(help="The PhoenixExperiment's name.", show_default=False)]
Namespace = Annotated[str | None, cluster.NamespaceOption]
Context = Annotated[str | None, cluster.ContextOption]


class ListFormat(enum.StrEnum):
    table = "table"
    wide = "wide"
    yaml = "yaml"
    json = "json"


class ManifestFormat(enum.StrEnum):
    yaml = "yaml"
    json = "json"


def _status(obj: dict[str, Any]) -> experiment.ExperimentStatus:
    try:
        return experiment.ExperimentStatus.model_validate(obj.get("status") or {})
    except ValueError:
        return experiment.ExperimentStatus()


def _age(timestamp: str | datetime | None) -> str:
    """Like kubectl: the largest unit, or two for short spans."""
    if timestamp is None:
        return ""
    since = timestamp if isinstance(timestamp, datetime) else datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    seconds = max(0, int((datetime.now(UTC) - since).total_seconds()))
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 600:
        return f"{seconds // 60}m{seconds % 60}s"
    if seconds < 3 * 3600:
        return f"{seconds // 60}m"
    if seconds < 2 * 86400:
        return f"{seconds // 3600}h{seconds % 3600 // 60}m"
    return f"{seconds // 86400}d"


def _percent(interval: experiment.Interval | None) -> str:
    return "" if interval is None else f"{interval.estimate:.1%}"


def _interval(interval: experiment.Interval | None, money: bool = False) -> str:
    return output.interval(interval, money, missing="not measured yet")


def _row(obj: dict[str, Any], wide: bool, all_namespaces: bool) -> list[str]:
    status = _status(obj)
    results = status.results or experiment.Results()
    savings = results.monthly_savings_usd
    row = [
        obj["metadata"]["name"],
        status.phase,
        status.verdict.decision if status.verdict else "",
        _percent(results.series_reduction),
        "" if savings is None else f"${savings.estimate:,.0f}",
        _age(obj["metadata"].get("creationTimestamp")),
    ]
    if all_namespaces:
        row.insert(0, obj["metadata"]["namespace"])
    if wide:
        spec = obj.get("spec") or {}
        row += [(spec.get("candidate") or {}).get("template", ""), str(results.samples_used), _age(status.started_at)]
    return row


def list_experiments(
    namespace: Namespace = None,
    all_namespaces: Annotated[bool, typer.Option("--all-namespaces", "-A", help="Every namespace.")] = False,
    fmt: Annotated[ListFormat, typer.Option("--output", "-o", help="table, wide, yaml or json.")] = ListFormat.table,
    context: Context = None,
) -> None:
    """List experiments with their phase, decision, reduction and savings.

    Example: kubectl phoenix list -A -o wide
    """
    target = cluster.connect(context, namespace)
    items = target.experiments(all_namespaces)
    if fmt in (ListFormat.yaml, ListFormat.json):
        output.emit({"apiVersion": "v1", "kind": "List", "items": items}, output.Format(fmt.value))
        return
    if not items:
        where = "any namespace" if all_namespaces else f"namespace {target.namespace}"
        typer.echo(f"No experiments found in {where}.", err=True)
        return
    columns = ["NAME", "PHASE", "DECISION", "REDUCTION", "SAVINGS/MO", "AGE"]
    if all_namespaces:
        columns.insert(0, "NAMESPACE")
    if fmt is ListFormat.wide:
        columns += ["CANDIDATE", "SAMPLES", "RUNNING"]
    output.columns(columns, [_row(obj, fmt is ListFormat.wide, all_namespaces) for obj in items])


def _summary_rows(obj: dict[str, Any]) -> list[tuple[str, str]]:
    status = _status(obj)
    results = status.results or experiment.Results()
    rows = [("phase", status.phase), ("namespace", obj["metadata"]["namespace"])]
    parsed = _parsed(obj)
    if parsed is not None:
        rows.append(("load", parsed.spec.describe_load()))
    if status.verdict:
        decided = status.verdict.decided_at.strftime("%Y-%m-%d %H:%M:%S UTC")
        rows.append(("decision", f"{status.verdict.decision} (decided {decided})"))
    for variant, figures in (("baseline", results.baseline), ("candidate", results.candidate)):
        name = status.baseline_pipeline if variant == "baseline" else status.candidate_pipeline
        if figures.active_series is not None:
            measured = f"{figures.active_series:,.0f} series, {figures.datapoints_per_minute or 0:,.0f} datapoints/min"
            rows.append((variant, f"{name or ''} {measured}".strip()))
    rows += [
        ("series reduction", _interval(results.series_reduction)),
        ("datapoint reduction", _interval(results.datapoint_reduction)),
        ("monthly savings", _interval(results.monthly_savings_usd, money=True)),
    ]
    if results.fidelity:
        rows.append(("fidelity", f"{results.fidelity.passed}/{results.fidelity.checked} critical queries agree"))
    rows += [(g.name, "pass" if g.passed else "breached") for g in results.guardrails]
    if status.warmup is not None and parsed is not None:
        rows.append(("warmup", output.warmup(status.warmup.seconds, status.warmup.settled, parsed.spec.warmup)))
    rows.append(("samples", str(results.samples_used)))
    flagged = results.anomalies.count if results.anomalies else None
    rows += output.trust_rows(
        results.trend, results.input_agreement, results.anomalies, flagged, results.seconds_to_decide
    )
    rows += _prediction(obj, results.candidate.active_series)
    rows += [("reason", reason) for reason in (status.verdict.reasons if status.verdict else [])]
    if status.promotion is not None:
        rows.append(("promoted", _promotion_row(status.promotion)))
    if status.drift is not None and status.drift.checked_at is not None:
        rows.append(("drift watch", _drift_row(status.drift)))
    for condition in status.conditions:
        rows.append((f"condition {condition.type}", f"{condition.status} {condition.reason}: {condition.message}"))
    return rows


def _parsed(obj: dict[str, Any]) -> kinds.PhoenixExperiment | None:
    """The experiment, if the models accept its spec; else the status's conditions say why."""
    try:
        parsed = manifests.parse_object({k: obj[k] for k in ("apiVersion", "kind", "metadata", "spec")})
    except manifests.InvalidManifest:
        return None
    assert isinstance(parsed, kinds.PhoenixExperiment)
    return parsed


def _prediction(obj: dict[str, Any], measured_series: float | None) -> list[tuple[str, str]]:
    """The estimate beside the measurement, for an experiment whose spec the models accept."""
    parsed = _parsed(obj)
    if parsed is None:
        return []
    from phoenix_operator.cli import estimate_cmd  # its Prometheus client loads only when a row is shown

    row = estimate_cmd.prediction_row(parsed.spec, measured_series)
    return [row] if row else []


def _promotion_row(record: experiment.PromotionRecord) -> str:
    row = f"into {record.target} at {record.promoted_at:%Y-%m-%d %H:%M:%S} UTC"
    if record.rolled_back_at is not None:
        row += f", rolled back at {record.rolled_back_at:%Y-%m-%d %H:%M:%S} UTC"
    return row


def _drift_row(drift: experiment.DriftStatus) -> str:
    assert drift.checked_at is not None
    kept = "unknown" if drift.kept_ratio is None else f"{drift.kept_ratio:.4g}"
    expected = drift.expected_kept_ratio
    within = "" if expected is None else f" (expected [{expected.low:.4g}, {expected.high:.4g}])"
    resources = "".join(f", {name} {shown}" for name, _, _, shown in reconcile_drift.resources(drift))
    return f"kept points ratio {kept}{within}{resources}, checked {drift.checked_at:%H:%M:%S} UTC"


def status(
    name: NameArgument,
    namespace: Namespace = None,
    fmt: Annotated[output.Format, typer.Option("--output", "-o", help="table, yaml or json.")] = output.Format.table,
    context: Context = None,
) -> None:
    """Show an experiment's phase, conditions, results and verdict.

    Example: kubectl phoenix status quickstart
    """
    obj = cluster.connect(context, namespace).experiment(name)
    table = output.table(f"Phoenix experiment: {name}", ["", ""], _summary_rows(obj))
    output.emit(obj, fmt, table)


def _progress(obj: dict[str, Any]) -> str:
    status = _status(obj)
    results = status.results
    line = f"{datetime.now(UTC):%H:%M:%S} {status.phase}"
    if results is not None:
        line += f", {results.samples_used} samples, series reduction {_interval(results.series_reduction)}"
    waiting = next((c for c in status.conditions if c.status != "True" and c.type != "Succeeded"), None)
    if waiting is not None and status.phase not in reconcile_experiment.TERMINAL:
        line += f" ({waiting.type}: {waiting.reason})"
    if status.verdict:
        line += f", {status.verdict.decision}"
    return line


def watch(
    name: NameArgument,
    namespace: Namespace = None,
    timeout: Annotated[str, typer.Option(help="Give up after this long, e.g. 30m.")] = "1h",
    context: Context = None,
) -> None:
    """Follow an experiment until it ends, one line per change, then its summary.

    Exits 0 when it completes, 1 when it fails, is aborted or the timeout passes.

    Example: kubectl phoenix watch quickstart
    """
    seconds = _duration(timeout, "--timeout")
    target = cluster.connect(context, namespace)
    target.experiment(name)  # not found is an error before anything is watched
    last = ""
    for obj in target.watch_experiment(name, int(seconds)):
        line = _progress(obj)
        if line.split(" ", 1)[1] != last:
            typer.echo(line)
            last = line.split(" ", 1)[1]
        phase = _status(obj).phase
        if phase in reconcile_experiment.TERMINAL:
            output.emit(
                obj, output.Format.table, output.table(f"Phoenix experiment: {name}", ["", ""], _summary_rows(obj))
            )
            sys.stdout.flush()
            if phase != "Completed":
                raise typer.Exit(1)
            return
    output.fail(f"error: {name} did not end within {timeout}")


def _duration(text: str, flag: str) -> float:
    try:
        return common.duration_seconds(pydantic.TypeAdapter(common.Duration).validate_python(text))
    except pydantic.ValidationError:
        output.fail(f"error: {flag}: invalid value {text!r}: expected a duration such as 30s, 5m or 1h30m")


def report_cmd(
    name: NameArgument,
    html: Annotated[Path | None, typer.Option("--html", help="Also write a self-contained HTML report.")] = None,
    namespace: Namespace = None,
    context: Context = None,
) -> None:
    """The verdict report of a finished (or running) experiment, from its status.

    Example: kubectl phoenix report quickstart --html quickstart.html
    """
    obj = cluster.connect(context, namespace).experiment(name)
    status = _status(obj)
    if status.results is None and status.verdict is None:  # an experiment that ended on no data has a verdict only
        output.fail(f"error: {name} has no results yet (phase {status.phase})")
    output.emit(obj, output.Format.table, output.table(f"Phoenix verdict: {name}", ["", ""], _summary_rows(obj)))
    if html is not None:
        from phoenix_operator.cli import report  # jinja2's HTML templates load only for --html

        html.write_text(report.from_status(name, _experiment(obj).spec, status), encoding="utf-8")
        typer.echo(f"phoenix: report written to {html}", err=True)


def _experiment(obj: dict[str, Any]) -> kinds.PhoenixExperiment:
    try:
        parsed = manifests.parse_object({k: obj[k] for k in ("apiVersion", "kind", "metadata", "spec")})
    except manifests.InvalidManifest as error:
        output.fail(*(f"error: {obj['metadata']['name']}: {problem}" for problem in error.problems))
    assert isinstance(parsed, kinds.PhoenixExperiment)
    return parsed


def promote(
    name: NameArgument,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the manifest to commit; change nothing.")] = False,
    fmt: Annotated[ManifestFormat, typer.Option("--output", "-o", help="yaml or json.")] = ManifestFormat.yaml,
    force: Annotated[bool, typer.Option("--force", help="Promote even without a Promote verdict.")] = False,
    namespace: Namespace = None,
    context: Context = None,
) -> None:
    """Put the candidate into the target pipeline, or print that pipeline for Git.

    The target is spec.promotion.targetPipelineRef, else the baseline's
    pipelineRef, else a new pipeline named NAME-promoted.

    Example (GitOps): kubectl phoenix promote quickstart --dry-run -o yaml > pipelines/prod.yaml
    """
    target = cluster.connect(context, namespace)
    found = target.experiment(name)
    verdict = _status(found).verdict
    if not force and (verdict is None or verdict.decision != "Promote"):
        decision = verdict.decision if verdict else "no verdict yet"
        output.fail(f"error: {name}: the verdict is {decision}, not Promote (use --force to promote anyway)")
    obj = _experiment(found)
    existing = target.pipeline(promotion.target_name(obj))
    manifest = promotion.promoted_pipeline(obj, existing)
    if dry_run:
        output.emit(manifest, output.Format(fmt.value))
        return
    pipeline_name = manifest["metadata"]["name"]
    if existing is None:
        target.create(cluster.PIPELINES, manifest)
        typer.echo(f"phoenixprocesspipeline/{pipeline_name} created with the candidate of {name}")
    else:
        target.patch(cluster.PIPELINES, pipeline_name, {"spec": promotion.spec_patch(obj, existing)})
        typer.echo(f"phoenixprocesspipeline/{pipeline_name} now runs the candidate of {name}")
    record = promotion.record(pipeline_name, existing, datetime.now(UTC))
    target.patch_status(cluster.EXPERIMENTS, name, {"promotion": _with_nulls(record)})


def rollback(name: NameArgument, namespace: Namespace = None, context: Context = None) -> None:
    """Undo the experiment's promotion: its target gets back the spec it had before.

    A target the promotion created is deleted. The experiment's status keeps
    what the promotion changed (status.promotion), whether `promote` or
    `policy: auto` did it.

    Example: kubectl phoenix rollback quickstart
    """
    target = cluster.connect(context, namespace)
    record = _status(target.experiment(name)).promotion
    current = target.pipeline(record.target) if record is not None else None
    refusal = promotion.rollback_refusal(record, current)
    if refusal is not None:
        output.fail(f"error: {name}: {refusal}")
    assert record is not None and current is not None
    patch = promotion.rollback_patch(record, current)
    if patch is None:
        target.delete(cluster.PIPELINES, record.target)
        typer.echo(f"phoenixprocesspipeline/{record.target} deleted: the promotion of {name} had created it")
    else:
        target.patch(cluster.PIPELINES, record.target, {"spec": patch})
        typer.echo(f"phoenixprocesspipeline/{record.target} runs its spec from before the promotion of {name} again")
    rolled_back = record.model_copy(update={"rolled_back_at": datetime.now(UTC)})
    target.patch_status(cluster.EXPERIMENTS, name, {"promotion": _with_nulls(rolled_back)})


def _with_nulls(record: experiment.PromotionRecord) -> dict[str, Any]:
    """The record as a merge patch: its unset fields clear those of an earlier promotion."""
    return record.model_dump(mode="json", by_alias=True)


def abort(name: NameArgument, namespace: Namespace = None, context: Context = None) -> None:
    """Stop an experiment: its pipelines and load are removed, and it ends Aborted.

    Example: kubectl phoenix abort quickstart
    """
    target = cluster.connect(context, namespace)
    phase = _status(target.experiment(name)).phase
    if phase in reconcile_experiment.TERMINAL:
        output.fail(f"error: {name} has already ended ({phase})")
    target.patch(cluster.EXPERIMENTS, name, {"spec": {"abort": True}})
    typer.echo(f"phoenixexperiment/{name} aborting (was {phase})")
