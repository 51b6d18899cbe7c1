"""The README's ``chat compare`` section stays true to the command it documents."""

from __future__ import annotations

import re
from pathlib import Path

import chat.compare as lab
from chat.cli import compare

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()
SECTION = README[README.index("## `chat compare`"):README.index("## Performance")]


def test_lab_section_lists_every_option() -> None:
    """Each option of ``chat compare`` has a row in the section's option table."""
    options = [opt for param in compare.params for opt in param.opts if opt.startswith("--")]
    missing = [opt for opt in options if f"`{opt}" not in SECTION]
    assert missing == []


def test_lab_section_names_every_exit_status() -> None:
    """The exit statuses the command returns are the ones the section explains."""
    codes = {value for name, value in vars(lab).items() if name.startswith("EXIT_")}
    sentence = SECTION[SECTION.index("Exit status:"):]
    sentence = sentence[:sentence.index("\n\n")]
    assert {int(n) for n in re.findall(r"\b(\d+) (?:ok|if|on)\b", sentence)} == codes
