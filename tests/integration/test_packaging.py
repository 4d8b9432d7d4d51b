"""The wheel the operator image installs: built from exactly what operator/Dockerfile copies."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from tests.harness import controlplane

REPO = controlplane.REPO


def _copied_by_dockerfile() -> list[str]:
    lines = (REPO / "operator" / "Dockerfile").read_text().splitlines()
    copied = [line.split()[1:-1] for line in lines if line.startswith("COPY ") and "--from" not in line]
    return [path for paths in copied for path in paths]


def test_the_image_wheel_carries_templates_crds_and_both_commands(tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    for path in _copied_by_dockerfile():
        copy = shutil.copytree if (REPO / path).is_dir() else shutil.copy
        copy(REPO / path, source / path)
    built = subprocess.run(
        # without build isolation the backend comes from this environment, not the package index
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--quiet",
            "--wheel-dir",
            str(tmp_path / "wheels"),
            ".",
        ],
        cwd=source,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert built.returncode == 0, built.stderr
    (wheel,) = (tmp_path / "wheels").glob("phoenix_platform-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert {
        "phoenix_operator/templates/pipelines/candidate.yaml.j2",
        "phoenix_operator/crds/kustomization.yaml",
    } <= set(names)
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "phoenix = phoenix_operator.cli.app:main" in text
    assert "kubectl-phoenix = phoenix_operator.cli.app:kubectl_main" in text

    # installed alone (its dependencies from this environment), it renders a pipeline from its own templates
    target = tmp_path / "installed"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "--no-index",
            "--quiet",
            "--target",
            str(target),
            str(wheel),
        ],
        check=True,
        timeout=300,
    )
    rendered = subprocess.run(
        [sys.executable, "-m", "phoenix_operator", "render", "-f", str(REPO / "examples" / "pipeline.yaml")],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(target), "PYTHONSAFEPATH": "1"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert rendered.returncode == 0, rendered.stderr
    assert "receivers:" in rendered.stdout
    located = subprocess.run(
        [sys.executable, "-c", "import phoenix_operator; print(phoenix_operator.__file__)"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(target)},
        capture_output=True,
        text=True,
        check=True,
    )
    assert located.stdout.startswith(str(target))
