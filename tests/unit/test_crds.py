"""Generated CRDs are committed, current, structural, and accept every example."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import pytest
from ruamel import yaml

from phoenix_operator.cli import crds_cmd
from phoenix_operator.models import crd, kinds, pipeline

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((REPO / "examples").rglob("*.yaml"))


def _load_all(path: Path) -> list[Any]:
    return [d for d in yaml.YAML(typ="safe", pure=True).load_all(path.read_text()) if d]


# CRD schemas are OpenAPI 3.0: boolean exclusiveMinimum, as in JSON Schema draft 4.
def _schema_for(kind: str) -> dict[str, Any]:
    definition = crd.definition(next(k for k in kinds.KINDS if k.kind == kind))
    schema: dict[str, Any] = definition["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


def test_committed_crds_match_the_models() -> None:
    for name, text in crds_cmd.expected_files().items():
        committed = REPO / "crds" / name
        assert committed.is_file(), f"{committed} missing: run `phoenix crds generate`"
        assert committed.read_text() == text, f"{committed} is stale: run `phoenix crds generate`"


def test_committed_reference_matches_the_models() -> None:
    for name, text in crds_cmd.expected_docs().items():
        committed = REPO / "docs" / name
        assert committed.is_file(), f"{committed} missing: run `phoenix crds generate`"
        assert committed.read_text() == text, f"{committed} is stale: run `phoenix crds generate`"


def _fields(node: Any, path: str) -> list[tuple[str, str]]:
    """Every field under a schema node, with its description."""
    found = []
    if isinstance(node, dict):
        for name, field in (node.get("properties") or {}).items():
            found.append((f"{path}.{name}", str(field.get("description") or "").strip()))
            found += _fields(field, f"{path}.{name}")
        if isinstance(node.get("items"), dict):
            found += _fields(node["items"], f"{path}[]")
        if isinstance(node.get("additionalProperties"), dict):
            found += _fields(node["additionalProperties"], f"{path}{{}}")
    return found


def test_every_crd_field_says_what_it_is() -> None:
    """`kubectl explain` teaches: no field of any kind, spec or status, without a description."""
    fields = [f for kind in kinds.KINDS for f in _fields(_schema_for(kind.kind), kind.kind)]
    # the API server forbids anything but a type on the root metadata
    fields = [
        (path, text) for path, text in fields if not path.endswith(".metadata") or "." in path[: -len(".metadata")]
    ]
    undescribed = [path for path, description in fields if not description]
    print(f"{len(fields)} fields, {len(undescribed)} without a description")
    assert len(fields) > 250
    assert undescribed == []


def _walk(node: Any, path: str = "") -> list[str]:
    """Paths where the schema is not structural."""
    bad = []
    if isinstance(node, dict):
        for key in ("$ref", "const", "oneOf", "$defs"):
            if key in node:
                bad.append(f"{path}.{key}")
        if node.get("additionalProperties") is False:
            bad.append(f"{path}.additionalProperties")
        if "properties" in node and node.get("type") != "object":
            bad.append(f"{path}: properties without type object")
        for key, value in node.items():
            bad += _walk(value, f"{path}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            bad += _walk(value, f"{path}[{i}]")
    return bad


@pytest.mark.parametrize("kind", [k.kind for k in kinds.KINDS])
def test_schemas_are_structural(kind: str) -> None:
    assert _walk(_schema_for(kind)) == []


def test_every_crd_has_status_short_name_and_category() -> None:
    for kind in kinds.KINDS:
        spec = crd.definition(kind)["spec"]
        assert spec["versions"][0]["subresources"] == {"status": {}}
        assert spec["names"]["shortNames"] == [kind.short_name]
        assert spec["names"]["categories"] == ["phoenix"]
    assert {k.short_name for k in kinds.KINDS} == {"pexp", "ppp", "lsim"}


def test_printer_columns() -> None:
    columns = {k.kind: [c.name for c in k.columns] for k in kinds.KINDS}
    assert columns["PhoenixExperiment"] == ["Phase", "Decision", "Reduction", "Savings/mo", "Age"]
    assert columns["PhoenixProcessPipeline"] == ["Template", "Variant", "Ready", "Series", "Budget", "K", "Age"]


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: str(p.relative_to(REPO)))
def test_examples_match_their_crd_schema(example: Path) -> None:
    for document in _load_all(example):
        if not str(document["apiVersion"]).startswith("phoenix.io/"):
            continue  # the Secrets an example's exporters read
        jsonschema.Draft4Validator(_schema_for(document["kind"])).validate(document)


@pytest.mark.parametrize(
    ("kind", "spec", "field"),
    [
        ("LoadSim", {"hosts": 0, "targets": [{"endpoint": "http://x:1"}]}, "hosts"),
        ("LoadSim", {"duration": "-5m", "targets": [{"endpoint": "http://x:1"}]}, "duration"),
        ("PhoenixProcessPipeline", {"template": "nope"}, "template"),
        (
            "PhoenixExperiment",
            {
                "baseline": {"template": "baseline"},
                "candidate": {"template": "candidate"},
                "analysis": {"alpha": 0.9},
            },
            "alpha",
        ),
    ],
)
def test_crd_schema_rejects_bad_values(kind: str, spec: dict[str, Any], field: str) -> None:
    document = {
        "apiVersion": "phoenix.io/v1alpha1",
        "kind": kind,
        "metadata": {"name": "x"},
        "spec": spec,
    }
    with pytest.raises(jsonschema.ValidationError) as error:
        jsonschema.Draft4Validator(_schema_for(kind)).validate(document)
    assert field in "/".join(map(str, error.value.absolute_path))


def test_default_collector_image_matches_the_pinned_build() -> None:
    versions = dict(
        line.split("=", 1)
        for line in (REPO / "tools" / "versions.env").read_text().splitlines()
        if "=" in line and not line.startswith("#")
    )
    assert pipeline.DEFAULT_COLLECTOR_IMAGE.endswith(":" + versions["OTELCOL_VERSION"])
    # the operator's image validates configs with that same collector
    assert f"FROM {pipeline.DEFAULT_COLLECTOR_IMAGE} AS collector" in (REPO / "operator" / "Dockerfile").read_text()
