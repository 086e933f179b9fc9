"""The README's commands and options stay in step with the CLI: every command it shows runs with --help, and
every option it names exists on that command (or, named alone in the README or docs, on some command); the README
stays short."""

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


@pytest.mark.parametrize("page", ["README.md", "docs/design.md", "CONTRIBUTING.md"])
def test_every_option_named_in_the_docs_exists_somewhere(page):
    text = (ROOT / page).read_text()
    every = set().union(*(options_of(c) for c in COMMANDS), {"--help"})
    spans = [span for span in re.findall(r"`([^`]+)`", text) if not re.search(r"\b(ruff|pytest|pip|python)\b", span)]
    named = {option for span in spans for option in OPTION.findall(span)}  # other tools' options aside
    assert not named - every, sorted(named - every)


def test_the_readme_is_short_and_links_what_it_left_out():
    """A README a new user reads in five minutes: under 10 KB; internals in docs/design.md, figures in
    eval/RESULTS.md, the layout in CONTRIBUTING.md, each linked and there."""
    assert len(README.encode()) <= 10_000, len(README.encode())
    for link in ("docs/design.md", "eval/RESULTS.md", "CONTRIBUTING.md", "docs/review-queue.png", "docs/api-docs.png"):
        assert f"]({link})" in README and (ROOT / link).is_file(), link


def test_the_readme_starts_with_the_two_set_up_commands():
    first = re.search(r"```bash\n(.*?)```", README, re.S)
    assert first and [line.split()[:2] for line in first.group(1).splitlines()] == [["make", "run"], ["make", "test"]]
