"""The README's commands and YAML are true: every command it shows exists with the flags it names, every file
it points to is in the repository, what it applies validates, and its YAML is what Phoenix's manifests accept."""

from __future__ import annotations

import itertools
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer
import typer.main
import yaml
from typer.testing import CliRunner

from phoenix_operator.cli import app
from tests import readme

REPO = Path(__file__).resolve().parents[2]
COMMANDS = typer.main.get_command(app.app)
runner = CliRunner()


def _shell_commands() -> list[tuple[int, str]]:
    """Each command of the sh blocks, continuations joined, comments and chained commands apart."""
    commands = []
    for start, text in readme.blocks("sh"):
        for line in text.replace("\\\n", " ").splitlines():
            code = re.split(r"\s#\s", f" {line} ", maxsplit=1)[0].strip()
            parts = re.split(r"&&|, (?=kubectl |phoenix )", code)
            commands += [(start, part.strip()) for part in parts if part.strip()]
    return commands


def _phoenix_commands() -> list[tuple[int, str]]:
    """`phoenix ...` and `kubectl phoenix ...`, without the program's name."""
    out = []
    for start, command in _shell_commands():
        for program in ("kubectl phoenix ", "phoenix "):
            if command.startswith(program):
                out.append((start, command.removeprefix(program)))
                break
    return out


def _is_group(command: Any) -> bool:
    return hasattr(command, "list_commands")


def _subcommand(group: Any, name: str) -> Any:
    found = group.get_command(typer.Context(group), name)
    assert found is not None, f"no command {name!r}; there are {group.list_commands(typer.Context(group))}"
    return found


def _resolve(words: list[str]) -> list[Any]:
    """The commands a synopsis names; `a|b` names either."""
    found: list[Any] = []
    group: Any = COMMANDS
    for position, word in enumerate(words):
        if not _is_group(group) or word.startswith("-"):
            break
        names = word.split("|")
        if len(names) > 1:
            return [_subcommand(group, n) for n in names]
        group = _subcommand(group, word)
        if position == len(words) - 1 or not _is_group(group):
            found = [group]
    return found or [group]


def _flags(command: str) -> set[str]:
    return set(re.findall(r"(?<![\w/=.-])(--?[a-zA-Z][\w-]*)", command))


@pytest.mark.parametrize(("start", "command"), _phoenix_commands(), ids=lambda v: str(v)[:60])
def test_every_phoenix_command_in_the_readme_exists_with_the_flags_it_names(start: int, command: str) -> None:
    words = [w for w in re.split(r"[\s\[\]]+", command) if w]
    commands = _resolve(words)
    assert commands and not any(_is_group(c) for c in commands), f"README line {start}: {command}"
    for target in commands:
        accepted = {opt for param in target.params for opt in param.opts if opt.startswith("-")} | {"--help"}
        unknown = _flags(command) - accepted
        assert not unknown, f"README block at line {start}: `{target.name}` has no {sorted(unknown)}: {command}"


def test_every_command_the_readme_shows_answers_its_help() -> None:
    shown = [[w for w in re.split(r"[\s\[\]]+", c) if w and not w.startswith("-")] for _, c in _phoenix_commands()]
    paths = {tuple(words[:2]) for words in shown}
    checked = 0
    for path in sorted(paths):
        words: list[str] = []
        group: Any = COMMANDS
        for word in path:
            if not _is_group(group) or word not in group.commands:
                break
            words.append(word)
            group = group.commands[word]
        result = runner.invoke(app.app, [*words, "--help"])
        assert result.exit_code == 0 and "Usage" in result.output, (words, result.output)
        checked += 1
    assert checked >= 10


def _repository_paths(command: str) -> list[str]:
    return [w for w in shlex.split(command) if re.match(r"^(examples|kustomize|operator|docs|crds)/", w)]


def test_every_file_the_readme_points_to_is_in_the_repository() -> None:
    linked = re.findall(r"\]\(((?:docs|examples|kustomize|bench|tools|tests)/[^)#\s]+)", readme.README)
    shown = [p for _, command in _shell_commands() for p in _repository_paths(command)]
    missing = [p for p in [*linked, *shown] if not (REPO / p).exists()]
    assert shown and linked and not missing, missing


def test_what_the_readme_applies_is_valid_and_what_it_kustomizes_is_an_overlay() -> None:
    applied, built = [], []
    for _, command in _shell_commands():
        words = shlex.split(command)
        if words[:2] != ["kubectl", "apply"]:
            continue
        for flag, path in itertools.pairwise(words):
            (applied if flag == "-f" else built if flag == "-k" else []).append(path)
    applied = [p for p in applied if (REPO / p).exists()]  # the others are the reader's, made by a command before
    for path in applied:
        result = runner.invoke(app.app, ["validate", "-f", str(REPO / path)])
        assert result.exit_code == 0, f"{path}: {result.output}"
    for path in built:
        assert (REPO / path / "kustomization.yaml").is_file(), path
    assert applied and built


def test_the_readmes_yaml_parses_and_its_overlay_names_what_phoenix_ships() -> None:
    blocks = readme.blocks("yaml")
    assert blocks
    for start, text in blocks:
        for document in yaml.safe_load_all(text):
            assert isinstance(document, dict), f"README YAML at line {start}"
            if document.get("kind") != "Kustomization":
                result = runner.invoke(app.app, ["validate", "-f", "-"], input=yaml.safe_dump(document))
                assert result.exit_code == 0, f"README YAML at line {start}: {result.output}"
                continue
            # `../phoenix/...` is the reader's checkout of this repository
            for resource in document.get("resources", []):
                inside = resource.split("/phoenix/", 1)[-1]
                assert (REPO / inside / "kustomization.yaml").is_file(), f"line {start}: {resource}"
            base = (REPO / "kustomize").rglob("*.yaml")
            shipped = "\n".join(p.read_text(encoding="utf-8") for p in base)
            for image in document.get("images", []):
                assert f"image: {image['name']}:" in shipped, f"line {start}: no image {image['name']}"
            for generator in document.get("configMapGenerator", []):
                assert f"name: {generator['name']}" in shipped, f"line {start}: no ConfigMap {generator['name']}"
                for literal in generator.get("literals", []):
                    key = literal.split("=", 1)[0]
                    assert f"{key}=" in shipped or f"key: {key}" in shipped, f"line {start}: no setting {key}"


def _runs_on_a_checkout(command: str) -> bool:
    """A phoenix command on the checkout's own files: no placeholder, no redirect, no cluster, no Prometheus."""
    words = shlex.split(command)
    placeholder = re.search(r"\.\.\.|[\[|>]|\b[A-Z]{2,}\b", command)
    # a file a command before it writes (`> experiment.yaml`) is the reader's, not the checkout's
    files = [path for flag, path in itertools.pairwise(words) if flag in ("-f", "--dashboards", "--rules")]
    shipped = all((REPO / path).exists() for path in files)
    needs_more = placeholder or not shipped or "--prometheus" in words or words[1] == "operator"
    return words[0] == "phoenix" and not needs_more


def test_every_local_command_the_readme_shows_runs_on_a_checkout() -> None:
    """What a newcomer copies works: each command exits 0 and prints what it is for, with no traceback.

    `phoenix run --local` takes minutes: it is `make demo`, and tests/e2e/test_run_local.py runs that experiment.
    """
    commands = [command for _, command in _shell_commands() if _runs_on_a_checkout(command)]
    demo = next(c for c in commands if c.startswith("phoenix run --local"))
    makefile = (REPO / "Makefile").read_text(encoding="utf-8")
    assert f"$(BIN)/{demo}" in makefile, "the README's run --local is what make demo runs"
    ran = []
    for command in commands:
        if command == demo:
            continue
        done = subprocess.run(
            [sys.executable, "-m", "phoenix_operator", *shlex.split(command)[1:]],
            cwd=REPO, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert done.returncode == 0 and done.stdout.strip(), f"{command}\n{done.stdout}\n{done.stderr}"
        assert "Traceback" not in done.stderr, f"{command}\n{done.stderr}"
        ran.append(shlex.split(command)[1])
    assert {"validate", "render", "estimate", "analyze", "recommend", "loadsim"} <= set(ran), ran
