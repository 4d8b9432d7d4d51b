"""Every runtime dependency the package declares is one the shipped code uses."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SHIPPED = [REPO / "operator" / "phoenix_operator", REPO / "analysis" / "phoenix_analysis"]
# The module a distribution is imported as, where the names differ.
MODULES = {"ruamel.yaml": "ruamel", "prometheus-client": "prometheus_client"}
# Declared for another library, which imports them; the pyproject says why.
LOADED_BY_OTHERS = {"sniffio": "httpcore", "ruamel.yaml.clib": "ruamel.yaml"}


def _imported_modules() -> set[str]:
    pattern = re.compile(r"^\s*(?:from|import)\s+([A-Za-z_][\w]*)", re.MULTILINE)
    found: set[str] = set()
    for root in SHIPPED:
        for source in root.rglob("*.py"):
            found.update(pattern.findall(source.read_text(encoding="utf-8")))
    return found


def test_every_declared_runtime_dependency_is_imported() -> None:
    declared = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    names = [re.split(r"[<>=!~ \[]", requirement, maxsplit=1)[0] for requirement in declared]
    imported = _imported_modules()
    unused = [
        name
        for name in names
        if name not in LOADED_BY_OTHERS and MODULES.get(name, name.replace("-", "_")) not in imported
    ]
    assert unused == []
