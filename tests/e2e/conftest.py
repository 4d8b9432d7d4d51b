"""The operator with `--runtime local`, shared by the files that drive experiments through it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness import controlplane
from tests.harness import operator as harness


@pytest.fixture
def local_operator(
    control_plane: controlplane.ControlPlane, namespace: str, tmp_path: Path
) -> Iterator[harness.Operator]:
    # as its ServiceAccount, with only the role kustomize/base gives it
    kubeconfig = harness.operator_kubeconfig(control_plane, tmp_path / "operator.kubeconfig")
    with harness.running(
        control_plane,
        namespace,
        tmp_path,
        "--runtime",
        "local",
        "--measure-step",
        "2s",
        "--workdir",
        str(tmp_path / "runtime"),
        kubeconfig=kubeconfig,
    ) as running:
        yield running
