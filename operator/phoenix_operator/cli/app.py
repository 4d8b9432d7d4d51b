"""Wires the commands into `phoenix` and `kubectl phoenix`; no logic lives here.

A command's module is imported only when that command runs or shows its own
help, so every command starts with only what it needs, as kubectl's plugins
do. `phoenix --help` lists each command with its docstring's first line,
read from the module's source rather than imported.
"""

from __future__ import annotations

import ast
import importlib
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import typer
import typer.core
import typer.main

CLI = Path(__file__).parent


@dataclass(frozen=True)
class Command:
    module: str  # in phoenix_operator.cli
    function: str


@dataclass(frozen=True)
class Group:
    help: str
    commands: dict[str, Command] = field(default_factory=dict)


COMMANDS: dict[str, Command | Group] = {
    "validate": Command("manifest_cmds", "validate"),
    "render": Command("manifest_cmds", "render"),
    "analyze": Command("analyze_cmd", "analyze"),
    "run": Command("run_cmd", "run"),
    "recommend": Command("recommend_cmd", "recommend"),
    "estimate": Command("estimate_cmd", "estimate"),
    # on a cluster, through the user's kubeconfig
    "list": Command("experiment_cmds", "list_experiments"),
    "status": Command("experiment_cmds", "status"),
    "watch": Command("experiment_cmds", "watch"),
    "report": Command("experiment_cmds", "report_cmd"),
    "promote": Command("experiment_cmds", "promote"),
    "rollback": Command("experiment_cmds", "rollback"),
    "abort": Command("experiment_cmds", "abort"),
    "history": Command("history_cmd", "history_cmd"),
    "crds": Group(
        "CustomResourceDefinitions generated from the models.", {"generate": Command("crds_cmd", "generate")}
    ),
    "loadsim": Group(
        "Synthetic per-process metrics, the same for every target.",
        {"run": Command("loadsim_cmd", "run"), "estimate": Command("loadsim_cmd", "estimate")},
    ),
    "operator": Group("The Kubernetes operator that runs experiments.", {"run": Command("operator_cmd", "run")}),
}


@cache
def summary(command: Command) -> str:
    """The first line of the command's docstring, from its module's source."""
    tree = ast.parse((CLI / f"{command.module}.py").read_text(encoding="utf-8"))
    function = next(node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name == command.function)
    return (ast.get_docstring(function) or "").splitlines()[0]


def load(name: str, entry: Command | Group) -> typer.core.TyperCommand | typer.core.TyperGroup:
    """The command or group `entry` names, its modules imported now."""
    if isinstance(entry, Group):
        built = typer.Typer(help=entry.help, no_args_is_help=True, add_completion=False)
        built.callback()(_group)  # a group even when it holds one command
        commands = list(entry.commands.items())
    else:
        built, commands = typer.Typer(add_completion=False), [(name, entry)]
    for command_name, command in commands:
        module = importlib.import_module(f"phoenix_operator.cli.{command.module}")
        built.command(command_name)(getattr(module, command.function))
    loaded = typer.main.get_command(built)
    assert isinstance(loaded, typer.core.TyperCommand | typer.core.TyperGroup)
    loaded.name = name
    return loaded


def _group() -> None:
    """Its help is the Group's."""


class LazyGroup(typer.core.TyperGroup):
    """Names its commands at once and imports one only to run it or show its help."""

    listing = False  # while the group's own help is written: its commands' summaries suffice

    def list_commands(self, ctx: Any) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: Any, cmd_name: str) -> typer.core.TyperCommand | typer.core.TyperGroup | None:
        entry = COMMANDS.get(cmd_name)
        if entry is None:
            return None
        if self.listing:
            return typer.core.TyperCommand(cmd_name, help=entry.help if isinstance(entry, Group) else summary(entry))
        return load(cmd_name, entry)

    def get_help(self, ctx: Any) -> str:
        self.listing = True
        try:
            return super().get_help(ctx)
        finally:
            self.listing = False


app = typer.Typer(
    name="phoenix",
    cls=LazyGroup,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def phoenix() -> None:
    """A/B test OpenTelemetry Collector pipelines and prove the metrics cost you save."""


def main() -> None:
    app()


def kubectl_main() -> None:
    app(prog_name="kubectl phoenix")
