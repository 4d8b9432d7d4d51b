"""The README's pictures are drawn from text sources in docs/, and stay equal to what those draw."""

from __future__ import annotations

import importlib.util
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_the_how_it_works_picture_is_what_its_source_draws() -> None:
    spec = importlib.util.spec_from_file_location("draw_how_it_works", REPO / "docs" / "draw_how_it_works.py")
    assert spec is not None and spec.loader is not None
    source = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(source)
    committed = (REPO / "docs" / "how-it-works.svg").read_text(encoding="utf-8")
    assert committed == source.svg(), "docs/how-it-works.svg is stale: run `python docs/draw_how_it_works.py`"
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert "docs/how-it-works.svg" in readme
