"""The queries people rely on, read from Grafana dashboards, Prometheus rule files and query logs.

Each query keeps where it came from (file and panel title, or rule name), so a
recommendation can show its evidence. A file or query that cannot be read is
one line in `problems`, and the rest is still read.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ruamel import yaml
from ruamel.yaml import error as yaml_error

Kind = Literal["dashboard", "alert", "record", "query-log", "experiment", "prometheus-rule"]
# Grafana's interval and range variables become a minute (what $__rate_interval is at a 15 s scrape),
# their _ms and _s forms the same in numbers.
_GRAFANA_DURATIONS = re.compile(r"\$\{?__(?:rate_interval|interval|range|auto)\b\}?|\[\[__(?:interval|range)\]\]")
_GRAFANA_NUMBERS = re.compile(r"\$\{?__(interval_ms|range_ms|range_s)\}?")
_MINUTE_AS = {"interval_ms": "60000", "range_ms": "60000", "range_s": "60"}
_VARIABLE = r"(?:\$\{[^}]+\}|\$\w+|\[\[\w+\]\])"
# a matcher whose value holds a variable becomes a match-all on that label
_VARIABLE_MATCHER = re.compile(r'([A-Za-z_]\w*)\s*(?:=~|!~|!=|=)\s*"[^"]*' + _VARIABLE + r'[^"]*"')
_VARIABLE_RANGE = re.compile(r"\[\s*" + _VARIABLE + r"\s*\]")
_LABEL_VALUES = re.compile(r"^\s*label_values\(\s*([A-Za-z_:][\w:]*)[^,]*,\s*([A-Za-z_]\w*)\s*\)\s*$")
_QUERY_RESULT = re.compile(r"^\s*query_result\((.*)\)\s*$", re.S)


@dataclass(frozen=True)
class Query:
    text: str
    kind: Kind
    where: str  # "dashboards/hosts.json: panel CPU by executable"
    record: str | None = None  # the series a recording rule writes


@dataclass(frozen=True)
class LabelUse:
    """A dashboard variable listing a label's values (`label_values(metric, label)`)."""

    metric: str
    label: str
    where: str


@dataclass
class Corpus:
    queries: list[Query] = field(default_factory=list)
    label_uses: list[LabelUse] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    files: int = 0


def grafana_to_promql(expr: str) -> str:
    """A Grafana panel query with its variables replaced by values that parse."""
    text = _GRAFANA_NUMBERS.sub(lambda m: _MINUTE_AS[m.group(1)], expr)
    text = _GRAFANA_DURATIONS.sub("1m", text)
    text = _VARIABLE_MATCHER.sub(lambda m: f'{m.group(1)}=~".*"', text)
    return _VARIABLE_RANGE.sub("[1m]", text)


def _files(path: Path, suffixes: tuple[str, ...]) -> Iterator[Path]:
    if path.is_dir():
        yield from sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in suffixes)
    else:
        yield path


def read_dashboards(path: Path, corpus: Corpus) -> None:
    """Every Prometheus query and `label_values` variable of the Grafana dashboards at `path`."""
    for file in _files(path, (".json",)):
        corpus.files += 1
        try:
            document = json.loads(file.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as error:
            corpus.problems.append(f"{file}: not a Grafana dashboard: {error}")
            continue
        dashboard = document.get("dashboard", document) if isinstance(document, dict) else None
        if not isinstance(dashboard, dict):
            corpus.problems.append(f"{file}: not a Grafana dashboard: no JSON object")
            continue
        library = {
            uid: element.get("model", {})
            for uid, element in (dashboard.get("__elements") or {}).items()
            if isinstance(element, dict)
        }
        for panel in _panels(dashboard):
            model = library.get((panel.get("libraryPanel") or {}).get("uid"), {}) if "libraryPanel" in panel else {}
            title = panel.get("title") or model.get("title") or f"id {panel.get('id', '?')}"
            for target in panel.get("targets") or model.get("targets") or []:
                expr = target.get("expr") if isinstance(target, dict) else None
                if isinstance(expr, str) and expr.strip():
                    corpus.queries.append(Query(grafana_to_promql(expr), "dashboard", f"{file}: panel {title}"))
        for variable in (dashboard.get("templating") or {}).get("list") or []:
            _variable(variable, file, corpus)


def _panels(container: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, including those inside rows, old-style and new-style."""
    for panel in container.get("panels") or []:
        if isinstance(panel, dict):
            yield panel
            yield from _panels(panel)  # a collapsed row holds its panels
    for row in container.get("rows") or []:
        if isinstance(row, dict):
            yield from _panels(row)


def _variable(variable: Any, file: Path, corpus: Corpus) -> None:
    if not isinstance(variable, dict) or variable.get("type") != "query":
        return
    query = variable.get("query")
    if isinstance(query, dict):
        query = query.get("query")
    if not isinstance(query, str):
        return
    where = f"{file}: variable {variable.get('name', '?')}"
    values = _LABEL_VALUES.match(query)
    result = _QUERY_RESULT.match(query)
    if values:
        corpus.label_uses.append(LabelUse(values.group(1), values.group(2), where))
    elif result:
        corpus.queries.append(Query(grafana_to_promql(result.group(1)), "dashboard", where))


def read_rules(path: Path, corpus: Corpus) -> None:
    """Every alerting and recording rule of Prometheus rule files or PrometheusRule manifests at `path`."""
    for file in _files(path, (".yaml", ".yml")):
        corpus.files += 1
        try:
            loaded = yaml.YAML(typ="safe").load_all(file.read_text(encoding="utf-8"))
            documents = [d for d in loaded if d is not None]
        except (OSError, UnicodeDecodeError, yaml_error.YAMLError) as error:
            corpus.problems.append(f"{file}: not a rule file: {str(error).splitlines()[0]}")
            continue
        for document in documents:
            groups = document.get("groups") if isinstance(document, dict) else None
            if groups is None and isinstance(document, dict):
                groups = (document.get("spec") or {}).get("groups")
            if not isinstance(groups, list):
                corpus.problems.append(f"{file}: not a rule file: no groups")
                continue
            for group in groups:
                for rule in (group or {}).get("rules") or []:
                    add_rule(rule, str(file), "alert", corpus)


def add_rule(rule: Any, origin: str, kind: Kind, corpus: Corpus) -> None:
    """One rule, from a file or from Prometheus's /api/v1/rules (whose `query` is the expression)."""
    if not isinstance(rule, dict):
        return
    expr = rule.get("expr", rule.get("query"))
    record = rule.get("record") or (rule.get("name") if rule.get("type") == "recording" else None)
    alert = rule.get("alert") or (rule.get("name") if rule.get("type") == "alerting" else None)
    if not isinstance(expr, str) or not (record or alert):
        return
    if record:
        corpus.queries.append(Query(expr, "record", f"{origin}: record {record}", record=str(record)))
    else:
        corpus.queries.append(Query(expr, kind, f"{origin}: alert {alert}"))


def read_query_log(path: Path, corpus: Corpus) -> None:
    """The queries of a Prometheus `query_log_file` (JSON lines with params.query)."""
    corpus.files += 1
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        corpus.problems.append(f"{path}: not a query log: {error}")
        return
    unreadable = 0
    for line in lines:
        if not line.strip():
            continue
        try:
            query = json.loads(line)["params"]["query"]
        except (ValueError, KeyError, TypeError):
            unreadable += 1
            continue
        if isinstance(query, str) and query.strip():
            corpus.queries.append(Query(query, "query-log", str(path)))
    if unreadable:
        corpus.problems.append(f"{path}: {unreadable} lines are not query log entries and were skipped")


def add_experiment(obj: dict[str, Any], corpus: Corpus) -> None:
    """The critical queries of a PhoenixExperiment, as the API server returned it."""
    metadata = obj.get("metadata") or {}
    where = f"experiment {metadata.get('namespace', 'default')}/{metadata.get('name', '?')}"
    for query in ((obj.get("spec") or {}).get("analysis") or {}).get("criticalQueries") or []:
        if isinstance(query, dict) and isinstance(query.get("query"), str):
            corpus.queries.append(Query(query["query"], "experiment", f"{where}: query {query.get('name', '?')}"))
