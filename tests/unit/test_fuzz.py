"""Generated bad input: manifests, analyze inputs and hostile files.

Each generated input goes through what a user runs (`phoenix validate`,
`phoenix render`, `phoenix analyze`) and must end in a clean answer: exit 0,
or exit 1 with one line per problem. A traceback, a rejection that names no
field, a spec the models accept but the templates cannot render, or a
Promote on corrupted data fails the test with the input hypothesis shrank it
to.

The runs here are short and seeded, so `make test` sees the same inputs every
time; `make fuzz` sets PHOENIX_FUZZ_EXAMPLES and runs them long and random.
"""

from __future__ import annotations

import copy
import functools
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer.testing
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ruamel import yaml
from typer.testing import CliRunner

from phoenix_operator import GROUP, binaries
from phoenix_operator.cli import app, manifest_cmds
from phoenix_operator.models import manifests

REPO = Path(__file__).resolve().parents[2]
LONG = os.environ.get("PHOENIX_FUZZ_EXAMPLES")


def _fuzz(examples: int) -> settings:
    return settings(
        max_examples=int(LONG or examples),
        derandomize=not LONG,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


runner = CliRunner()


def _examples() -> dict[str, list[dict[str, Any]]]:
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for path in sorted((REPO / "examples").rglob("*.yaml")):
        for document in yaml.YAML(typ="safe").load_all(path.read_text()):
            if isinstance(document, dict) and str(document.get("apiVersion", "")).startswith(f"{GROUP}/"):
                by_kind.setdefault(document["kind"], []).append(document)
    return by_kind


EXAMPLES = _examples()
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats()
    | st.text(st.characters(exclude_categories=("Cs",)), max_size=12)
    | st.sampled_from(["", "0s", "5m", "-1s", "1h30m", "http://a:1", "a-b", "A_B", "{{ 7*7 }}", "${env:HOME}"])
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every place in the document a value sits, except apiVersion (another kind is skipped, not judged)."""
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, child in items:
        if prefix or key != "apiVersion":
            yield (*prefix, key)
            yield from _paths(child, (*prefix, key))


def _near(draw: st.DrawFn, value: Any) -> Any:
    """A value of the same type as `value`: a mutation the models may well accept."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return draw(st.integers(-3, 3 * max(abs(value), 1)))
    if isinstance(value, float):
        return draw(st.floats(-1.0, 3 * max(abs(value), 1.0)))
    if isinstance(value, str):
        return draw(st.sampled_from([value.upper(), value + "x", value[:-1], f"{draw(st.integers(0, 999))}s"]))
    return draw(VALUES)


@st.composite
def mutated(draw: st.DrawFn, kind: str) -> dict[str, Any]:
    document: dict[str, Any] = copy.deepcopy(draw(st.sampled_from(EXAMPLES[kind])))
    for _ in range(draw(st.integers(0, 3))):
        path = draw(st.sampled_from(list(_paths(document))))
        *parents, last = path
        parent: Any = document
        for step in parents:
            parent = parent[step]
        operation = draw(st.sampled_from(["delete", "replace", "near", "near", "unknown"]))
        if operation == "delete":
            del parent[last]
        elif operation == "replace":
            parent[last] = draw(VALUES)
        elif operation == "near":
            parent[last] = _near(draw, parent[last])
        elif isinstance(parent[last], dict):
            parent[last][draw(st.sampled_from(["extra", "Spec", "keep_list"]))] = draw(VALUES)
    return document


def _dump(documents: list[Any]) -> str:
    stream = __import__("io").StringIO()
    yaml.YAML(typ="safe").dump_all(documents, stream)
    return stream.getvalue()


def _build_the_cli_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """CliRunner rebuilds the command tree from the signatures at each call, which costs more than the command."""
    monkeypatch.setattr(typer.testing, "_get_command", functools.cache(typer.testing._get_command))


def _cli(*args: str, stdin: str | None = None) -> tuple[int, str, str]:
    result = runner.invoke(app.app, list(args), input=stdin)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"phoenix {' '.join(args)} raised") from result.exception
    assert result.exit_code in (0, 1), result.output
    return result.exit_code, result.stdout, result.stderr


def _names_a_field(line: str, document: dict[str, Any]) -> bool:
    """FILE: KIND/NAME: FIELD.PATH: MESSAGE, with a path."""
    prefix = f"-: {manifest_cmds.document_label(document, 0)}: "
    path, _, message = line.removeprefix(prefix).partition(": ")
    return line.startswith(prefix) and bool(path.strip()) and bool(message)


@pytest.mark.parametrize("kind", sorted(EXAMPLES))
def test_generated_manifests_are_accepted_or_refused_field_by_field(kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # one collector process per example would take minutes; the collector judges a sample of them below
    monkeypatch.setenv(binaries.OTELCOL.env_var, "/nonexistent/otelcol-phoenix")
    _build_the_cli_once(monkeypatch)
    seen = {"accepted": 0, "refused": 0}
    accepted_texts: list[str] = []
    commands = ("validate",) if kind == "LoadSim" else ("validate", "render")

    @_fuzz(1000)
    @given(document=mutated(kind))
    def check(document: dict[str, Any]) -> None:
        text = _dump([document])
        try:
            manifests.parse_object(document)
        except manifests.InvalidManifest as error:
            assert all(p.path for p in error.problems), error.problems
            accepted = False
        else:
            accepted = True
            accepted_texts.append(text)
        seen["accepted" if accepted else "refused"] += 1
        for command in commands:
            code, _, err = _cli(command, "-f", "-", stdin=text)
            problems = [line for line in err.splitlines() if not line.startswith("note: ")]
            if accepted:
                # what the models accept, the templates render into a config that passes the structural check
                assert code == 0, err
            else:
                assert code == 1
                assert problems, err
                assert all(_names_a_field(line, document) for line in problems), err

    check()
    print(f"{kind}: {seen['accepted']} accepted, {seen['refused']} refused")
    assert seen["accepted"] and seen["refused"]
    if kind == "LoadSim":
        return
    monkeypatch.delenv(binaries.OTELCOL.env_var)
    binaries.require(binaries.OTELCOL)
    # 25 of each pipeline kind's accepted specs, spread over the run: the real collector takes every config
    for text in accepted_texts[:: max(1, len(accepted_texts) // 25)][:25]:
        code, _, err = _cli("validate", "-f", "-", stdin=text)
        assert code == 0 and "no collector binary" not in err, err + text


PROMOTED = json.loads((REPO / "examples" / "analyze" / "quickstart-input.json").read_text())
NUMBERS = st.none() | st.floats() | st.sampled_from([0.0, -1.0, 1e308, -1e308, 5e-324, 2**63, math.inf, math.nan])
WRONG = st.text(max_size=4) | st.booleans() | st.dictionaries(st.text(max_size=3), st.integers(), max_size=2)


def _arrays(node: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """The path of every array of samples in an analyze input."""
    if isinstance(node, dict):
        for key, child in node.items():
            yield from _arrays(child, (*prefix, key))
    elif isinstance(node, list) and all(isinstance(v, int | float) or v is None for v in node):
        yield prefix
    elif isinstance(node, list):
        for index, child in enumerate(node):
            yield from _arrays(child, (*prefix, index))


@st.composite
def corrupted(draw: st.DrawFn) -> tuple[dict[str, Any], bool]:
    """A Promote's input with damage, and whether the damage leaves data no verdict may rest on."""
    data: dict[str, Any] = copy.deepcopy(PROMOTED)
    spoiled = False
    for _ in range(draw(st.integers(1, 4))):
        path = draw(st.sampled_from(list(_arrays(data))))
        *parents, last = path
        parent: Any = data
        for step in parents:
            parent = parent[step]
        samples = parent[last]
        damage = draw(st.sampled_from(["value", "infinite", "truncate", "empty", "wrong-type", "top-level"]))
        if damage == "value" and samples:
            samples[draw(st.integers(0, len(samples) - 1))] = draw(NUMBERS)
        elif damage == "infinite" and samples:
            samples[draw(st.integers(0, len(samples) - 1))] = draw(st.sampled_from([math.inf, -math.inf]))
        elif damage == "truncate":
            del samples[draw(st.integers(0, len(samples))) :]
        elif damage == "empty":
            samples.clear()
        elif damage == "wrong-type":
            parent[last] = draw(WRONG | st.lists(WRONG, min_size=1, max_size=3))
        else:
            data[draw(st.sampled_from([*PROMOTED, "extra"]))] = draw(VALUES)
        spoiled = spoiled or (damage in ("infinite", "truncate", "empty") and path[0] in ("baseline", "candidate"))
    return data, spoiled


def _strict_json(text: str) -> Any:
    def refuse(constant: str) -> None:
        raise AssertionError(f"the output holds {constant}, which is not JSON")

    return json.loads(text, parse_constant=refuse)


def test_analyze_on_damaged_input_answers_cleanly_and_never_promotes_on_bad_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _build_the_cli_once(monkeypatch)
    untouched = _cli("analyze", "-f", "-", "-o", "json", stdin=json.dumps(PROMOTED))[1]
    assert _strict_json(untouched)["decision"] == "Promote"
    outcomes: dict[str, int] = {}

    @_fuzz(300)
    @given(damaged=corrupted())
    def check(damaged: tuple[dict[str, Any], bool]) -> None:
        data, spoiled = damaged
        code, out, err = _cli("analyze", "-f", "-", "-o", "json", stdin=json.dumps(data))
        if code == 1:
            assert err.startswith("error: -: ") and "Traceback" not in err, err
            outcomes["refused"] = outcomes.get("refused", 0) + 1
            return
        decision = _strict_json(out)["decision"]
        outcomes[decision] = outcomes.get(decision, 0) + 1
        assert not (spoiled and decision == "Promote"), data

    check()
    print(f"analyze: {outcomes}")
    assert outcomes.get("refused") and outcomes.get("Inconclusive")


def _bomb(levels: int) -> str:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, levels)]
    return "\n".join(lines) + f"\nkind: PhoenixProcessPipeline\nspec: *a{levels - 1}\n"


def _pipeline_document(name: str) -> str:
    header = f"apiVersion: {GROUP}/v1alpha1\nkind: PhoenixProcessPipeline\n"
    return header + f"metadata: {{name: {name}}}\nspec: {{template: baseline}}\n"


HOSTILE = {
    "an alias bomb": (lambda: _bomb(9), "aliases expand to more than"),
    "a document that contains itself": (lambda: "kind: LoadSim\nspec: &loop {targets: [*loop]}\n", "contains itself"),
    "a 50 MB manifest": (lambda: "kind: LoadSim\nspec:\n  seed: 1\n" + "#" * (50 * 2**20), "50.0 MiB is more than"),
    "binary garbage": (lambda: bytes(range(256)) * 64, "cannot read"),
    "unprintable text": (lambda: "kind: LoadSim\x00\x07\nspec: {}\n", "invalid YAML (line 1)"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_a_hostile_file_is_refused_in_one_line_in_bounded_time_and_memory(case: str, tmp_path: Path) -> None:
    content, expected = HOSTILE[case]
    data = content()
    path = tmp_path / "hostile.yaml"
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    gib = 2**30

    def limit_memory() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (2 * gib, 2 * gib))

    # the refusal's own CPU time: unlike the wall clock, a busy machine does not stretch it
    spent_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    result = subprocess.run(
        [str(Path(sys.executable).with_name("phoenix")), "validate", "-f", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=limit_memory,
        check=False,
    )
    spent = resource.getrusage(resource.RUSAGE_CHILDREN)
    seconds = spent.ru_utime + spent.ru_stime - spent_before.ru_utime - spent_before.ru_stime
    print(f"{case}: exit {result.returncode} in {seconds:.1f} CPU-seconds: {result.stderr.strip()}")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and expected in result.stderr, result.stderr
    assert seconds < 15


def test_a_bad_document_in_the_middle_spoils_none_of_the_others(tmp_path: Path) -> None:
    path = tmp_path / "three.yaml"
    bad_yaml = "apiVersion: phoenix.io/v1alpha1\nkind: LoadSim\nmetadata: {name: [unclosed\n"
    bad_spec = _pipeline_document("wrong") + "extra: 1\n"
    path.write_text("---\n".join([_pipeline_document("first"), bad_yaml, bad_spec, _pipeline_document("last")]))
    code, out, err = _cli("validate", "-f", str(path))
    assert code == 1
    assert out.splitlines() == [
        f"{path}: PhoenixProcessPipeline/first: valid",
        f"{path}: PhoenixProcessPipeline/last: valid",
    ]
    problems = [line for line in err.splitlines() if not line.startswith("note: ")]
    first_lines = len(_pipeline_document("first").splitlines())
    assert problems[0].startswith(f"error: {path}: invalid YAML (line {first_lines + 4})"), problems
    assert problems[1] == f"{path}: PhoenixProcessPipeline/wrong: extra: unknown field", problems
    assert len(problems) == 2


def test_any_bytes_get_a_clean_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    _build_the_cli_once(monkeypatch)

    @_fuzz(300)
    @given(content=st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
    def check(content: bytes) -> None:
        with tempfile.NamedTemporaryFile(suffix=".yaml") as file:
            file.write(content)
            file.flush()
            code, _, err = _cli("validate", "-f", file.name)
        assert code == 1 and err.strip(), err

    check()
