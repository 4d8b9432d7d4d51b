"""Field types and status shapes shared by the three kinds.

Every constraint a user can break lives here once, so the CRD schema, the
`phoenix validate` command and the operator reject the same inputs with the
same message.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Literal

import pydantic
from pydantic import alias_generators

DURATION_PATTERN = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"
DNS_LABEL_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
# Metric and attribute names end up inside YAML and OTTL string literals; a
# narrow alphabet keeps them data even before the renderer quotes them.
METRIC_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_.\-/]*$"
ATTRIBUTE_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_.\-]*$"
EXECUTABLE_NAME_PATTERN = r"^[A-Za-z0-9_.+@:\-]+$"

_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)")

# a duration such as 90s, 5m or 1h30m; each field that takes one says what it times
Duration = Annotated[str, pydantic.StringConstraints(pattern=DURATION_PATTERN)]
Fraction = Annotated[float, pydantic.Field(ge=0.0, le=1.0)]
DnsLabel = Annotated[str, pydantic.StringConstraints(pattern=DNS_LABEL_PATTERN, max_length=63)]
MetricName = Annotated[str, pydantic.StringConstraints(pattern=METRIC_NAME_PATTERN, max_length=255)]
AttributeName = Annotated[str, pydantic.StringConstraints(pattern=ATTRIBUTE_NAME_PATTERN, max_length=255)]
ExecutableName = Annotated[str, pydantic.StringConstraints(pattern=EXECUTABLE_NAME_PATTERN, max_length=255)]
# Kubernetes quantities are written either as numbers or strings ("500m", "1Gi").
Quantity = int | str


_QUANTITY = re.compile(r"^([0-9]+(?:\.[0-9]+)?)(Ki|Mi|Gi|Ti|k|M|G|T)?$")
_QUANTITY_UNITS = {None: 1, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}
_QUANTITY_UNITS.update({"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40})


def quantity_bytes(quantity: Quantity) -> float | None:
    """A memory quantity ("512Mi", "1G", 1073741824) in bytes; None for a form this does not read."""
    matched = _QUANTITY.match(str(quantity))
    return float(matched.group(1)) * _QUANTITY_UNITS[matched.group(2)] if matched else None


def duration_seconds(text: str) -> float:
    """Seconds in a duration string that already matched DURATION_PATTERN."""
    return sum(float(n) * _DURATION_UNITS[unit] for n, unit in _DURATION_PART.findall(text))


def cel_rules(*rules: tuple[str, str]) -> pydantic.ConfigDict:
    """A model's cross-field rules for the API server, as CEL `x-kubernetes-validations` in its CRD schema.

    Each pairs a CEL expression with its message; the model's own validator
    states the same rule, so the operator and `phoenix validate` agree with
    admission. Fields the rules read have CRD defaults, or are guarded by has().
    """
    validations: list[pydantic.JsonValue] = [{"rule": rule, "message": message} for rule, message in rules]
    return pydantic.ConfigDict(json_schema_extra={"x-kubernetes-validations": validations})


class Model(pydantic.BaseModel):
    """Base of every spec and status: camelCase on the wire, unknown keys rejected."""

    model_config = pydantic.ConfigDict(
        alias_generator=alias_generators.to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
        # a string under a field is its description, in the CRDs and docs/reference.md
        use_attribute_docstrings=True,
    )

    def to_wire(self) -> dict[str, object]:
        """The object as it is stored in Kubernetes: camelCase, no unset optionals."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class SecretKeyRef(Model):
    name: DnsLabel
    """The Secret, in the object's own namespace."""
    key: Annotated[str, pydantic.StringConstraints(pattern=r"^[-._a-zA-Z0-9]+$")]
    """The key within the Secret whose value is used."""


class Condition(Model):
    """A Kubernetes API convention condition."""

    type: str
    """What the condition is about, e.g. Ready or Succeeded."""
    status: Literal["True", "False", "Unknown"]
    """True, False or Unknown."""
    reason: Annotated[str, pydantic.StringConstraints(pattern=r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$")]
    """A CamelCase word a program can match on."""
    message: str = ""
    """What happened, for a person."""
    observed_generation: int | None = None
    """The spec generation the condition was set for."""
    last_transition_time: datetime
    """When the status last changed."""


class StatusBase(Model):
    observed_generation: int | None = None
    """The spec generation the operator last acted on."""
    conditions: list[Condition] = pydantic.Field(default_factory=list)
    """The object's conditions, one per type."""
    last_handled_configuration: str | None = None
    """The spec, labels and annotations the operator last handled, as JSON: how it tells their change from a
    status write. Kept in the status so that handling a change writes once."""
