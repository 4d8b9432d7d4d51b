"""The jinja2 environment that turns templates plus parameters into YAML text.

Templates are trusted, parameters are not. Rendering is sandboxed with strict
undefined names, and every parameter reaches the output only through a
quoting filter, so a value like `}}\\nexporters:` or `${env:SECRET}` stays a
string and can neither add YAML structure nor be expanded by the collector.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import jinja2
from jinja2 import sandbox


def yaml_str(value: object) -> str:
    """A double-quoted YAML scalar; `$` doubled because the collector expands `${...}`."""
    return json.dumps(str(value).replace("$", "$$"))


def ottl_str(value: object) -> str:
    """An OTTL string literal (OTTL accepts the same escapes as JSON)."""
    return json.dumps(str(value))


def ottl_executable_is(literal: str) -> str:
    return f'attributes["process.executable.name"] == {literal}'


def templates_dir() -> Path:
    """The templates shipped in the wheel, or the repository's in a source checkout."""
    here = Path(__file__).resolve().parent.parent
    for candidate in (here / "templates", here.parent.parent / "templates"):
        if (candidate / "pipelines").is_dir():
            return candidate
    raise FileNotFoundError("Phoenix templates directory not found next to the package")


@functools.cache
def environment() -> sandbox.SandboxedEnvironment:
    env = sandbox.SandboxedEnvironment(
        loader=jinja2.FileSystemLoader(str(templates_dir())),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
        # the templates ship with the package: no stat of the file at every render to see whether it changed
        auto_reload=False,
    )
    env.filters.update(yaml_str=yaml_str, ottl_str=ottl_str, ottl_executable_is=ottl_executable_is)
    return env


@functools.cache
def report_environment() -> sandbox.SandboxedEnvironment:
    """For HTML: every value is escaped unless the template says otherwise."""
    return sandbox.SandboxedEnvironment(
        loader=jinja2.FileSystemLoader(str(templates_dir())),
        undefined=jinja2.StrictUndefined,
        autoescape=True,
        auto_reload=False,
    )


def compile_templates() -> None:
    """Compile every pipeline template now, so the first render is as fast as the rest."""
    env = environment()
    for name in env.list_templates(filter_func=lambda name: name.startswith("pipelines/")):
        env.get_template(name)
