"""Reading manifests from files or stdin, with errors a user can act on.

Input is bounded before it is trusted: a file larger than the API server
would accept, or a document whose aliases expand past any real manifest's
size (a "billion laughs"), is refused with one line instead of being parsed
for minutes.
"""

from __future__ import annotations

import io
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruamel import yaml
from ruamel.yaml import error as yaml_error

from phoenix_operator.cli import output
from phoenix_operator.models import kinds, manifests

# The API server refuses request bodies above 3 MiB, so no manifest it takes is larger.
MAX_FILE_BYTES = 3 * 1024 * 1024
# Values a document may hold once its aliases are expanded; the largest real ones hold a few thousand.
MAX_EXPANDED_VALUES = 1_000_000
# A line that starts a new YAML document; directives (%YAML) before it belong to it.
_DOCUMENT_START = re.compile(r"^---(?=\s|$)", re.MULTILINE)


def read_text(path: str) -> str:
    if path == "-":
        text = sys.stdin.read(MAX_FILE_BYTES + 1)
    else:
        file = Path(path)
        if not file.is_file():
            output.fail(f"error: {path}: no such file")
        size = file.stat().st_size
        if size > MAX_FILE_BYTES:
            output.fail(f"error: {path}: {size / 2**20:.1f} MiB is more than a manifest may be (3 MiB)")
        try:
            text = file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            output.fail(f"error: {path}: cannot read: {error}")
    if len(text) > MAX_FILE_BYTES:
        output.fail(f"error: {path}: more than a manifest may be (3 MiB)")
    return text


@dataclass(frozen=True)
class Documents:
    """A file's documents that parsed, in order, and one line for each that did not."""

    parsed: list[Any]
    problems: list[str]


def _chunks(text: str) -> list[tuple[int, str]]:
    """The text cut at document markers, each piece with its first line's index, so one bad document spoils no other."""
    starts = sorted({0, *(m.start() for m in _DOCUMENT_START.finditer(text))})
    pieces = []
    line = 0
    for start, end in zip(starts, [*starts[1:], len(text)], strict=True):
        pieces.append((line, text[start:end]))
        line += text.count("\n", start, end)
    # directives and comments before the first marker belong to the first document
    if len(pieces) > 1 and all(_preamble(line) for line in pieces[0][1].splitlines()):
        pieces[:2] = [(0, pieces[0][1] + pieces[1][1])]
    return pieces


def _preamble(line: str) -> bool:
    return not line.strip() or line.startswith(("%", "#"))


def _expanded_size(value: Any, sizes: dict[int, int], open_: set[int]) -> int:
    """How many values the document holds with every alias written out; refuses one that contains itself."""
    if not isinstance(value, dict | list):
        return 1
    key = id(value)
    if key in sizes:
        return sizes[key]
    if key in open_:
        raise ValueError("a value contains itself through an alias")
    open_.add(key)
    children = [*value.keys(), *value.values()] if isinstance(value, dict) else value
    total = 1
    for child in children:
        total += _expanded_size(child, sizes, open_)
        if total > MAX_EXPANDED_VALUES:
            raise ValueError(f"its aliases expand to more than {MAX_EXPANDED_VALUES:,} values")
    open_.discard(key)
    sizes[key] = total
    return total


def _parse(piece: str, first_line: int) -> Any:
    """One document, or None when it is empty; raises ValueError with a message a user can act on."""
    try:
        found = [d for d in yaml.YAML(typ="safe").load_all(io.StringIO(piece)) if d is not None]
    except yaml_error.YAMLError as error:
        mark = getattr(error, "problem_mark", None) or getattr(error, "context_mark", None)
        # a mark past the document's end (an unclosed bracket) points at its last line, not the next document
        line = min(mark.line, max(len(piece.splitlines()) - 1, 0)) if mark is not None else 0
        where = f" (line {first_line + line + 1})"
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise ValueError(f"invalid YAML{where}: {problem}") from None
    except (ValueError, TypeError, OverflowError) as error:  # a constructor's own: a bad date, an unhashable key
        raise ValueError(f"invalid YAML (line {first_line + 1}): {error}") from None
    if not found:
        return None
    try:
        _expanded_size(found[0], {}, set())
    except ValueError as error:
        raise ValueError(f"refused (line {first_line + 1}): {error}") from None
    return found[0]


def read_documents(path: str) -> Documents:
    """Every non-empty YAML document in the file, and a problem line for each that does not parse."""
    parsed: list[Any] = []
    problems: list[str] = []
    for first_line, piece in _chunks(read_text(path)):
        try:
            document = _parse(piece, first_line)
        except ValueError as error:
            problems.append(f"error: {path}: {error}")
            continue
        if document is not None:
            parsed.append(document)
    if not parsed and not problems:
        problems.append(f"error: {path}: no YAML documents found")
    return Documents(parsed, problems)


def load_documents(path: str) -> list[Any]:
    """Every non-empty YAML document in the file, in order; any that does not parse is an error."""
    documents = read_documents(path)
    if documents.problems:
        output.fail(*documents.problems)
    return documents.parsed


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
