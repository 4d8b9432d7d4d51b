"""Semantic validation by the real collector's own `validate` command."""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

from phoenix_operator import binaries
from phoenix_operator.render import pipeline as render_pipeline


class CollectorRejected(Exception):
    """The collector refused the config; the message is the collector's own."""


def validate(rendered: render_pipeline.RenderedConfig, timeout: float = 60.0) -> None:
    """Run `otelcol-phoenix validate` on the config; raise CollectorRejected on refusal.

    Header variables that a Secret fills at run time get placeholder values,
    since only the config's shape is being checked.
    """
    binary = binaries.require(binaries.OTELCOL)
    env = {"PATH": "/usr/bin:/bin", **{s.env_var: "placeholder" for s in rendered.secret_env}}
    with tempfile.TemporaryDirectory(prefix="phoenix-validate-") as directory:
        config = Path(directory) / "config.yaml"
        config.write_text(rendered.text, encoding="utf-8")
        result = subprocess.run(
            [str(binary), "validate", f"--config=file:{config}"],
            capture_output=True,
            text=True,
            env=env,
            timeout=timeout,
            check=False,
        )
    if result.returncode != 0:
        message = (result.stderr or result.stdout).strip().splitlines()
        raise CollectorRejected("; ".join(message[-5:]) or f"exit code {result.returncode}")
