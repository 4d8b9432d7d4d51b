"""Wires the commands into `phoenix` and `kubectl phoenix`; no logic lives here."""

from __future__ import annotations

import typer

from phoenix_operator.cli import (
    analyze_cmd,
    crds_cmd,
    estimate_cmd,
    experiment_cmds,
    history_cmd,
    loadsim_cmd,
    manifest_cmds,
    operator_cmd,
    recommend_cmd,
    run_cmd,
)

app = typer.Typer(
    name="phoenix",
    help="A/B test OpenTelemetry Collector pipelines and prove the metrics cost you save.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
crds_app = typer.Typer(help="CustomResourceDefinitions generated from the models.", no_args_is_help=True)

app.command("validate")(manifest_cmds.validate)
app.command("render")(manifest_cmds.render)
app.command("analyze")(analyze_cmd.analyze)
app.command("run")(run_cmd.run)
app.command("recommend")(recommend_cmd.recommend)
app.command("estimate")(estimate_cmd.estimate)
# on a cluster, through the user's kubeconfig
app.command("list")(experiment_cmds.list_experiments)
app.command("status")(experiment_cmds.status)
app.command("watch")(experiment_cmds.watch)
app.command("report")(experiment_cmds.report_cmd)
app.command("promote")(experiment_cmds.promote)
app.command("rollback")(experiment_cmds.rollback)
app.command("abort")(experiment_cmds.abort)
app.command("history")(history_cmd.history_cmd)
crds_app.command("generate")(crds_cmd.generate)
app.add_typer(crds_app, name="crds")
loadsim_app = typer.Typer(help="Synthetic per-process metrics, the same for every target.", no_args_is_help=True)
loadsim_app.command("run")(loadsim_cmd.run)
loadsim_app.command("estimate")(loadsim_cmd.estimate)
app.add_typer(loadsim_app, name="loadsim")
operator_app = typer.Typer(help="The Kubernetes operator that runs experiments.", no_args_is_help=True)
operator_app.command("run")(operator_cmd.run)
app.add_typer(operator_app, name="operator")


def main() -> None:
    app()


def kubectl_main() -> None:
    app(prog_name="kubectl phoenix")
