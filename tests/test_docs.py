"""The README's commands and options stay in step with the CLI: every command it shows runs with --help, and
every option it names exists on that command (or, named alone in the Commands section, on some command)."""

from __future__ import annotations

import re
from typing import Any

import pytest
import typer
from conftest import ROOT
from typer.testing import CliRunner

from recommender.cli import app

README = (ROOT / "README.md").read_text()
COMMANDS: dict[str, Any] = dict(typer.main.get_command(app).commands)  # type: ignore[attr-defined]
INVOCATION = re.compile(r"(?:\$R|recommender|\.venv/bin/recommender)\s+([a-z]+)\b([^`#\n]*)")
OPTION = re.compile(r"(?<![\w-])(--[a-z][a-z0-9-]*)")


def options_of(command: str) -> set[str]:
    return {opt for param in COMMANDS[command].params for opt in (*param.opts, *param.secondary_opts)}


def shown_invocations() -> list[tuple[str, str]]:
    """(command, its options as written) for each `recommender COMMAND ...` in the README's code."""
    code = "\n".join(re.findall(r"```[a-z]*\n(.*?)```", README, re.S) + re.findall(r"`([^`\n]+)`", README))
    found = []
    for line in code.splitlines():
        for match in INVOCATION.finditer(line):
            if match.group(1) in COMMANDS or not line.lstrip().startswith(("make", "python")):
                found.append((match.group(1), match.group(2)))
    return found


def test_the_readme_shows_every_command():
    assert {command for command, _ in shown_invocations()} == set(COMMANDS)


@pytest.mark.parametrize("command", sorted({c for c, _ in shown_invocations()}))
def test_each_command_shown_exists_and_has_help(command):
    assert command in COMMANDS, f"README shows `recommender {command}`, which the CLI does not have"
    result = CliRunner().invoke(app, [command, "--help"])
    assert result.exit_code == 0 and "Usage" in result.output


def test_every_option_shown_with_a_command_exists():
    missing = [
        f"recommender {command} {option}"
        for command, rest in shown_invocations()
        if command in COMMANDS
        for option in OPTION.findall(rest)
        if option not in options_of(command)
    ]
    assert not missing, missing


def test_every_option_named_in_the_commands_section_exists_somewhere():
    section = README.split("## Commands", 1)[1].split("\n## ", 1)[0]
    every = set().union(*(options_of(c) for c in COMMANDS), {"--help"})
    named = {option for span in re.findall(r"`([^`]+)`", section) for option in OPTION.findall(span)}
    assert named and not named - every, sorted(named - every)
