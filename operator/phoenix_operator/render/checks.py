"""Structural checks on a rendered collector config.

The collector itself is the final judge (see `collector.validate`), but it is
not always installed where a manifest is rendered. These checks catch the
mistakes a template can make on its own: a pipeline naming an undefined
component, or a component defined and never used.
"""

from __future__ import annotations

from typing import Any

_SECTIONS = ("receivers", "processors", "exporters")


class InvalidConfig(Exception):
    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def structure_problems(config: Any) -> list[str]:
    if not isinstance(config, dict):
        return ["config is not a mapping"]
    pipelines = config.get("service", {}).get("pipelines")
    if not isinstance(pipelines, dict) or not pipelines:
        return ["service.pipelines is empty"]
    problems = []
    used: dict[str, set[str]] = {section: set() for section in _SECTIONS}
    for pipeline_name, pipeline in pipelines.items():
        for section in _SECTIONS:
            names = (pipeline or {}).get(section) or []
            if section != "processors" and not names:
                problems.append(f"service.pipelines.{pipeline_name}: no {section}")
            for name in names:
                used[section].add(name)
                if name not in (config.get(section) or {}):
                    problems.append(f"service.pipelines.{pipeline_name}.{section}: {name!r} is not defined")
    for section in _SECTIONS:
        for name in config.get(section) or {}:
            if name not in used[section]:
                problems.append(f"{section}.{name}: defined but used by no pipeline")
    return problems


def check_structure(config: Any) -> None:
    problems = structure_problems(config)
    if problems:
        raise InvalidConfig(problems)
