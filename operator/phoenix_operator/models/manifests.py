"""Turning user YAML into typed objects, with one readable problem per mistake.

pydantic reports union tags inside error locations (`spec.candidate.candidate.
parameters`). Users never wrote those tags, so paths are rebuilt by walking the
input itself: a location step that is not a key of the input is a tag and is
dropped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, TypeVar

import pydantic

from phoenix_operator.models import common, kinds

StatusT = TypeVar("StatusT", bound=common.StatusBase)
_OBJECT_ADAPTER: pydantic.TypeAdapter[kinds.PhoenixObject] = pydantic.TypeAdapter(kinds.PhoenixObject)

_PATTERN_MEANING = {
    common.DURATION_PATTERN: "a duration such as 30s, 5m or 1h30m",
    common.DNS_LABEL_PATTERN: "a DNS label: lowercase letters, digits and '-'",
    common.METRIC_NAME_PATTERN: "a metric name: letters, digits, '_', '.', '-' or '/'",
    common.ATTRIBUTE_NAME_PATTERN: "an attribute name: letters, digits, '_', '.' or '-'",
    common.EXECUTABLE_NAME_PATTERN: "an executable name: letters, digits and _ . + @ : -",
}


@dataclass(frozen=True)
class Problem:
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class InvalidManifest(Exception):
    """A manifest that does not match its kind; carries every problem found."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(str(p) for p in problems))
        self.problems = problems


def _user_path(data: Any, loc: tuple[int | str, ...]) -> str:
    parts: list[str] = []
    node = data
    for step in loc:
        if isinstance(step, int) and isinstance(node, list) and 0 <= step < len(node):
            parts[-1:] = [f"{parts[-1]}[{step}]" if parts else f"[{step}]"]
            node = node[step]
        elif isinstance(node, dict) and step in node:
            _append_key(parts, step)
            node = node[step]
        elif isinstance(node, dict) and isinstance(step, str) and _is_union_tag(node, step):
            continue
        else:
            _append_key(parts, step)
            node = None
    return ".".join(parts)


def _append_key(parts: list[str], key: object) -> None:
    """A key as a path step; one a dotted path cannot show (empty, or with dots or spaces) is quoted."""
    text = str(key)
    if text and not re.search(r"[\s.\[\]]", text):
        parts.append(text)
    elif parts:
        parts[-1] += f"[{text!r}]"
    else:
        parts.append(f"[{text!r}]")


def _is_union_tag(node: dict[str, Any], step: str) -> bool:
    """A step pydantic adds for a union's member: its tag, or the member model's class name.

    Users' keys are in the node, so only a step that is not there can be a tag;
    Phoenix's own fields are camelCase, so a capitalized step is a class name.
    """
    return step in {"ref", node.get("template"), node.get("kind")} or "[" in step or step[:1].isupper()


def _message(error: Any, value_present: bool) -> str:
    kind = error["type"]
    ctx = error.get("ctx") or {}
    value = error.get("input")
    if kind == "missing":
        return "required field is missing"
    if kind == "extra_forbidden":
        return "unknown field"
    if kind == "string_pattern_mismatch":
        meaning = _PATTERN_MEANING.get(ctx.get("pattern", ""), f"a match for {ctx.get('pattern')}")
        return f"invalid value {value!r}: expected {meaning}"
    if kind == "union_tag_invalid":
        field = str(ctx.get("discriminator", "tag")).strip("'")
        return f"unknown {field} {ctx.get('tag')!r} (expected {ctx.get('expected_tags', '')})"
    if kind == "literal_error":
        return f"invalid value {value!r}: expected {ctx.get('expected')}"
    msg = str(error["msg"]).removeprefix("Value error, ")
    if value_present and kind not in {"value_error", "assertion_error"}:
        return f"{msg} (got {value!r})"
    return msg


def _unknown_template(template: object) -> str:
    if template is None:
        return "required: either pipelineRef or template"
    return f"unknown template {template!r} (expected 'baseline', 'candidate' or 'adaptive')"


def problems_of(error: pydantic.ValidationError, data: Any) -> list[Problem]:
    problems = []
    for item in error.errors():
        loc = tuple(item["loc"])
        if item["type"] == "union_tag_invalid":
            loc = (*loc, str(item.get("ctx", {}).get("discriminator", "")).strip("'"))
        elif item["type"] == "baseline_source" and isinstance(item.get("input"), dict):
            template = item["input"].get("template")
            problems.append(Problem(_user_path(data, (*loc, "template")), _unknown_template(template)))
            continue
        problems.append(Problem(_user_path(data, loc), _message(item, "input" in item)))
    return list(dict.fromkeys(problems))


def parse_object(
    data: Any,
) -> kinds.PhoenixExperiment | kinds.PhoenixProcessPipeline | kinds.LoadSim:
    """Validate one manifest document; raise InvalidManifest with every problem."""
    if not isinstance(data, dict):
        raise InvalidManifest([Problem("", "a manifest must be a mapping with apiVersion, kind, metadata and spec")])
    kind = data.get("kind")
    if kinds.by_kind(str(kind)) is None:
        expected = ", ".join(k.kind for k in kinds.KINDS)
        raise InvalidManifest([Problem("kind", f"unknown kind {kind!r} (expected one of {expected})")])
    try:
        return _OBJECT_ADAPTER.validate_python(data)
    except pydantic.ValidationError as error:
        raise InvalidManifest(problems_of(error, data)) from None


def parse_stored(body: Any) -> kinds.PhoenixExperiment | kinds.PhoenixProcessPipeline | kinds.LoadSim:
    """A stored object without its status, which the drivers write and read apart."""
    return parse_object(
        {
            "apiVersion": body["apiVersion"],
            "kind": body["kind"],
            "metadata": dict(body["metadata"]),
            "spec": dict(body.get("spec") or {}),
        }
    )


def stored_status(body: Any, status_type: type[StatusT]) -> StatusT:
    """The stored status; one the models no longer accept is replaced, not fatal."""
    try:
        return status_type.model_validate(dict(body.get("status") or {}))
    except ValueError:
        return status_type()
