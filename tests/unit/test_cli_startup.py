"""Commands that need no analysis, operator or cluster start without loading numpy, scipy, kopf or the Kubernetes
client; `phoenix --help` loads no command at all."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from phoenix_operator.cli import app

REPO = Path(__file__).resolve().parents[2]
QUICKSTART = str(REPO / "examples" / "quickstart" / "experiment.yaml")
HEAVY = ("numpy", "scipy", "kopf", "kubernetes")


def _imported(*args: str) -> set[str]:
    """The top-level packages a run of `phoenix ARGS` imported, as `python -X importtime` lists them."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "phoenix_operator", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "KUBECONFIG": str(REPO / "no-such-kubeconfig")},
        check=False,
    )
    return {line.split("|")[-1].strip().split(".")[0] for line in done.stderr.splitlines() if "|" in line}


@pytest.mark.parametrize(
    "args",
    [("--help",), ("validate", "-f", QUICKSTART), ("render", "-f", QUICKSTART)],
    ids=["help", "validate", "render"],
)
def test_offline_commands_load_no_analysis_operator_or_cluster_client(args: tuple[str, ...]) -> None:
    assert _imported(*args) & set(HEAVY) == set()


def test_list_loads_the_cluster_client_but_no_analysis_or_operator() -> None:
    loaded = _imported("list")
    assert "kubernetes" in loaded  # it reached for the cluster (and found no kubeconfig)
    assert loaded & {"numpy", "scipy", "kopf"} == set()


def test_help_lists_every_command_without_loading_one() -> None:
    loaded = _imported("--help")
    assert loaded & {"pydantic", "jinja2", "phoenix_analysis"} == set()


def test_the_listing_says_what_each_command_says_of_itself() -> None:
    for name, entry in app.COMMANDS.items():
        loaded = app.load(name, entry)
        said = entry.help if isinstance(entry, app.Group) else app.summary(entry)
        assert loaded.name == name and (loaded.help or "").splitlines()[0] == said, name
