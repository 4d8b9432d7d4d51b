"""Reading manifests from files or stdin, with errors a user can act on."""

from __future__ import annotations

import io
import sys
from pathlib import Path
from typing import Any

from ruamel import yaml
from ruamel.yaml import error as yaml_error

from phoenix_operator.cli import output
from phoenix_operator.models import kinds, manifests


def read_text(path: str) -> str:
    if path == "-":
        return sys.stdin.read()
    file = Path(path)
    if not file.is_file():
        output.fail(f"error: {path}: no such file")
    try:
        return file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        output.fail(f"error: {path}: cannot read: {error}")


def load_documents(path: str) -> list[Any]:
    """Every non-empty YAML document in the file, in order."""
    loader = yaml.YAML(typ="safe", pure=True)
    try:
        documents = [d for d in loader.load_all(io.StringIO(read_text(path))) if d is not None]
    except yaml_error.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        output.fail(f"error: {path}: invalid YAML{where}: {problem}")
    if not documents:
        output.fail(f"error: {path}: no YAML documents found")
    return documents


def load_experiment(filename: str) -> kinds.PhoenixExperiment:
    """The one PhoenixExperiment of the file, as the models accept it."""
    documents = load_documents(filename)
    experiments = [d for d in documents if isinstance(d, dict) and d.get("kind") == "PhoenixExperiment"]
    if len(experiments) != 1:
        output.fail(f"error: {filename}: expected exactly one PhoenixExperiment, found {len(experiments)}")
    try:
        obj = manifests.parse_object(experiments[0])
    except manifests.InvalidManifest as error:
        output.fail(*(f"{filename}: {problem}" for problem in error.problems))
    assert isinstance(obj, kinds.PhoenixExperiment)
    return obj
