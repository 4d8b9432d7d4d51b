"""Semantic validation by the real collector's own `validate` command."""

from __future__ import annotations

import functools
import subprocess
import tempfile
from pathlib import Path

from phoenix_operator import binaries
from phoenix_operator.render import pipeline as render_pipeline


class CollectorRejected(Exception):
    """The collector refused the config; the message is the collector's own."""


def installed() -> bool:
    """Whether a collector binary is at hand to judge configs (it is optional outside the tests)."""
    return binaries.find(binaries.OTELCOL) is not None


def validate(rendered: render_pipeline.RenderedConfig) -> None:
    """Run `otelcol-phoenix validate` on the config; raise CollectorRejected on refusal."""
    message = refusal(rendered)
    if message is not None:
        raise CollectorRejected(message)


def refusal(rendered: render_pipeline.RenderedConfig) -> str | None:
    """The collector's own message when it rejects the config, None when it accepts it.

    Header variables that a Secret fills at run time get placeholder values,
    since only the config's shape is being checked.
    """
    binary = binaries.require(binaries.OTELCOL)
    return _refusal(binary, rendered.text, tuple(s.env_var for s in rendered.secret_env))


# the operator asks again on every reconcile of an unchanged config
@functools.lru_cache(maxsize=256)
def _refusal(binary: Path, text: str, env_vars: tuple[str, ...], timeout: float = 60.0) -> str | None:
    env = {"PATH": "/usr/bin:/bin", **{name: "placeholder" for name in env_vars}}
    with tempfile.TemporaryDirectory(prefix="phoenix-validate-") as directory:
        config = Path(directory) / "config.yaml"
        config.write_text(text, encoding="utf-8")
        result = subprocess.run(
            [str(binary), "validate", f"--config=file:{config}"],
            capture_output=True,
            text=True,
            env=env,
            timeout=timeout,
            check=False,
        )
    if result.returncode == 0:
        return None
    lines = [line.removeprefix("Error: ") for line in (result.stderr or result.stdout).strip().splitlines()]
    return "; ".join(lines[-5:]) or f"exit code {result.returncode}"
