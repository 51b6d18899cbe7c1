"""Running ``chat compare`` as a user would (through click) and reading back its files."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from click.testing import CliRunner

from chat.cli import main

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@dataclass(frozen=True)
class Run:
    """One finished ``chat compare`` invocation."""

    exit_code: int
    output: str
    paths: dict[str, Path]

    @property
    def text(self) -> str:
        """The output with rich's line wrapping undone (runs of whitespace made one space)."""
        return words(self.output)

    def json(self) -> dict[str, Any]:
        data: dict[str, Any] = orjson.loads(self.paths["json"].read_bytes())
        return data

    def csv(self) -> list[dict[str, str]]:
        with self.paths["csv"].open(newline="") as fh:
            return list(csv.DictReader(fh))

    def png(self) -> bytes:
        return self.paths["png"].read_bytes()


def words(text: str) -> str:
    """``text`` with every run of whitespace (rich wraps at 80 columns) made one space."""
    return " ".join(text.split())


def run_compare(out: Path, *args: str, files: bool = True) -> Run:
    """``chat compare --no-progress ARGS`` (with --json, --csv and --plot into ``out``)."""
    paths = {name: out / f"run.{name}" for name in ("json", "csv", "png")}
    extra = ["--json", str(paths["json"]), "--csv", str(paths["csv"]),
             "--plot", str(paths["png"])] if files else []
    result = CliRunner().invoke(main, ["compare", "--no-progress", *args, *extra],
                                terminal_width=120)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return Run(result.exit_code, result.output, paths)
