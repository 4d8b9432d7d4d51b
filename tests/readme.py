"""The README as its tests read it."""

from __future__ import annotations

from pathlib import Path

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")


def blocks(language: str) -> list[tuple[int, str]]:
    """(line number, text) of every fenced block in `language`."""
    found, inside, start, lines = [], None, 0, []
    for number, line in enumerate(README.splitlines(), start=1):
        if line.startswith("```"):
            if inside is None:
                inside, start, lines = line[3:].strip(), number, []
            else:
                if inside == language:
                    found.append((start, "\n".join(lines)))
                inside = None
        elif inside is not None:
            lines.append(line)
    return found
