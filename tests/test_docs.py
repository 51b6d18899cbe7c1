"""The README stays true: its commands are what CI runs, its option tables match Config."""

from __future__ import annotations

import re
from pathlib import Path

from chat.config import config_fields

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def _top_commands() -> list[str]:
    block = re.search(r"```sh\n(.*?)```", README, re.S)
    assert block is not None
    return [line for line in block.group(1).splitlines() if line.strip()]


def test_readme_opens_with_exactly_two_commands() -> None:
    """The first code block holds two commands: run the server, run the tests."""
    serve, tests = _top_commands()
    assert "chat serve" in serve and "pip install" in serve
    assert "pytest" in tests and ".[test]" in tests


def test_ci_runs_the_readme_test_command() -> None:
    """.ci/run runs the README's test command, word for word (inside its venv)."""
    _serve, tests = _top_commands()
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert tests in ci


def test_readme_documents_every_serve_option() -> None:
    """Every Config field appears as a --option in the README's tables."""
    missing = [f.name for f in config_fields()
               if f"`--{f.name.replace('_', '-')}`" not in README]
    assert missing == []
