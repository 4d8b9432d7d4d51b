"""CustomResourceDefinitions generated from the pydantic models.

The models are the single source of truth. A CRD's openAPIV3Schema must be
*structural*: no `$ref`, no `const`, no `additionalProperties: false`, and a
`type` at every level outside of `anyOf`/`oneOf`. pydantic's JSON schema is
turned into that shape here; the exact per-template rules the schema cannot
express are enforced by the models when the operator reads an object.
"""

from __future__ import annotations

from typing import Any

import pydantic

from phoenix_operator import GROUP, VERSION
from phoenix_operator.models import kinds

Schema = dict[str, Any]
_DROPPED_KEYS = {"title", "discriminator", "$defs"}
_MISSING = object()
CEL = "x-kubernetes-validations"


def inline(node: Any, defs: Schema) -> Any:
    """A JSON schema with every $ref replaced by its definition."""
    if isinstance(node, dict):
        if "$ref" in node:
            target = defs[node["$ref"].rsplit("/", 1)[-1]]
            extra = {k: v for k, v in node.items() if k != "$ref"}
            return inline({**target, **extra}, defs)
        return {k: inline(v, defs) for k, v in node.items() if k not in _DROPPED_KEYS}
    if isinstance(node, list):
        return [inline(v, defs) for v in node]
    return node


def _merge_objects(branches: list[Schema]) -> Schema:
    """One object schema accepting every branch: properties merged, required shared."""
    properties: dict[str, list[Schema]] = {}
    for branch in branches:
        for name, prop in branch.get("properties", {}).items():
            properties.setdefault(name, []).append(prop)
    required = set.intersection(*(set(b.get("required", [])) for b in branches))
    merged: Schema = {
        "type": "object",
        "properties": {
            name: _shared_default(_merge_same_field(props), props, len(branches)) for name, props in properties.items()
        },
    }
    if required:
        merged["required"] = sorted(required)
    descriptions = {branch.get("description") for branch in branches}
    if len(descriptions) == 1 and None not in descriptions:
        merged["description"] = descriptions.pop()
    # each branch's rules hold for the merged object too: they guard the fields only some branches have
    rules = [rule for branch in branches for rule in branch.get(CEL, [])]
    if rules:
        merged[CEL] = [rule for i, rule in enumerate(rules) if rule not in rules[:i]]
    return merged


def _shared_default(merged: Schema, props: list[Schema], branches: int) -> Schema:
    """Keep a default only if every branch has it: the API server applies
    defaults before the operator knows the branch, so one branch's default
    would land in objects of another branch, whose model rejects it."""
    defaults = [p.get("default", _MISSING) for p in props]
    if len(props) == branches and all(d == defaults[0] for d in defaults) and defaults[0] is not _MISSING:
        return merged
    return {k: v for k, v in merged.items() if k != "default"}


def _merge_same_field(props: list[Schema]) -> Schema:
    if len(props) == 1:
        return props[0]
    if all(p.get("type") == "object" and "properties" in p for p in props):
        return _merge_objects(props)
    if all("enum" in p for p in props):
        values = list(dict.fromkeys(v for p in props for v in p["enum"]))
        return {**props[0], "enum": values}
    return props[0]


def _structural(node: Any) -> Any:
    if isinstance(node, list):
        return [_structural(v) for v in node]
    if not isinstance(node, dict):
        return node
    node = {k: _structural(v) for k, v in node.items()}
    for key in ("anyOf", "oneOf"):
        if key in node:
            branches = [b for b in node.pop(key) if b.get("type") != "null"]
            if node.get("default", 0) is None:
                del node["default"]
            types = {b.get("type") for b in branches}
            if types == {"integer", "string"}:
                node["x-kubernetes-int-or-string"] = True
            elif len(branches) == 1:
                node = {**branches[0], **node}
            elif types == {"object"}:
                node = {
                    **_merge_objects(branches),
                    **{k: v for k, v in node.items() if k != "type"},
                }
            else:
                raise ValueError(f"cannot express union of {sorted(map(str, types))} in a CRD")
    if "const" in node:
        node["enum"] = [node.pop("const")]
    if node.get("additionalProperties") is False:
        del node["additionalProperties"]
    for bound, plain in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        if isinstance(node.get(bound), int | float) and not isinstance(node.get(bound), bool):
            node[plain] = node.pop(bound)
            node[bound] = True
    if node.get("default", 0) is None:
        del node["default"]
    return node


def openapi_schema(model: Any) -> Schema:
    """A structural openAPIV3Schema for a pydantic model or annotated union."""
    raw = pydantic.TypeAdapter(model).json_schema(by_alias=True)
    schema: Schema = _structural(inline(raw, raw.get("$defs", {})))
    return schema


def definition(kind: kinds.Kind) -> Schema:
    """The full CustomResourceDefinition object for one kind."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": kind.crd_name},
        "spec": {
            "group": GROUP,
            "names": {
                "kind": kind.kind,
                "listKind": f"{kind.kind}List",
                "plural": kind.plural,
                "singular": kind.kind.lower(),
                "shortNames": [kind.short_name],
                "categories": ["phoenix"],
            },
            "scope": "Namespaced",
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": [
                        {
                            "name": c.name,
                            "type": c.type,
                            "jsonPath": c.json_path,
                            **({"priority": c.priority} if c.priority else {}),
                        }
                        for c in kind.columns
                    ],
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "description": kind.description,
                            "required": ["spec"],
                            "properties": {
                                "apiVersion": {"type": "string", "description": f"{GROUP}/{VERSION}"},
                                "kind": {"type": "string", "description": kind.kind},
                                # the API server allows nothing but a type here
                                "metadata": {"type": "object"},
                                "spec": {**openapi_schema(kind.spec_type), "description": "What you ask for."},
                                "status": {
                                    **openapi_schema(kind.status_type),
                                    "description": "What the operator observed and did; written by it alone.",
                                },
                            },
                        }
                    },
                }
            ],
        },
    }


def file_name(kind: kinds.Kind) -> str:
    return f"{GROUP}_{kind.plural}.yaml"
