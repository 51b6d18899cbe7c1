"""Operator password hashes, the --oper option and `chat oper-hash` (pure, plus click's
in-process runner)."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from chat.cli import main
from chat.config import Config
from chat.core.passwords import DUMMY_HASH, hash_password, parse_hash, verify_password
from chat.irc.caps import ServerInfo


def test_hash_and_verify() -> None:
    """A hash verifies its password only; the stored form names its parameters."""
    stored = hash_password("s3cret", n=4)
    assert stored.startswith("scrypt$4$8$1$") and len(stored.split("$")) == 6
    assert verify_password("s3cret", stored) and not verify_password("S3cret", stored)
    assert hash_password("s3cret", n=4) != stored  # a fresh salt each time
    assert not verify_password("anything", DUMMY_HASH)


@pytest.mark.parametrize("bad", ["", "plain", "bcrypt$2b$x", "scrypt$3$8$1$AA$AA",
                                 "scrypt$16$8$1$!!$AA", "scrypt$16$8$1$AA", "scrypt$16$0$1$AA$AA",
                                 "scrypt$1099511627776$8$1$AA$AA"])
def test_malformed_hashes_are_refused(bad: str) -> None:
    """Anything that is not a sane scrypt hash does not parse and verifies nothing."""
    assert parse_hash(bad) is None and not verify_password("x", bad)


def test_config_takes_oper_entries_and_refuses_bad_ones() -> None:
    """--oper wants NAME:HASH; ServerInfo maps names to hashes."""
    stored = hash_password("pw", n=2)
    info = ServerInfo(Config(oper=(f"admin:{stored}", f"root:{stored}")), 0.0)
    assert info.opers == {"admin": stored, "root": stored}
    for entry in ("admin", "admin:pw", f":{stored}", f"a b:{stored}"):
        with pytest.raises(ValueError, match="--oper"):
            Config(oper=(entry,))


def test_oper_hash_command_and_serve_refusal() -> None:
    """`chat oper-hash` prints a verifying hash; `chat serve --oper x:pw` is a usage error."""
    runner = CliRunner()
    result = runner.invoke(main, ["oper-hash"], input="hunter2\nhunter2\n")
    assert result.exit_code == 0
    stored = result.output.strip().splitlines()[-1]
    assert verify_password("hunter2", stored)
    refused = runner.invoke(main, ["serve", "--oper", "admin:hunter2"])
    assert refused.exit_code == 2 and "--oper wants NAME:HASH" in refused.output
