"""`lbs operator-token`: a new token each time, or one kept in a file (the demo's), whose hash
the server takes."""

from __future__ import annotations

import hashlib
import stat
from pathlib import Path

from click.testing import CliRunner

from lbs.cli import main


def test_a_token_kept_in_a_file_is_made_once_for_its_owner_alone(tmp_path: Path) -> None:
    kept = tmp_path / "lbs-operator-token"

    first = CliRunner().invoke(main, ["operator-token", "--file", str(kept)])
    again = CliRunner().invoke(main, ["operator-token", "--file", str(kept)])

    token = kept.read_text()
    assert token.startswith("lbs_op_") and len(token) > 40
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    assert (
        first.output
        == again.output
        == f"LBS_OPERATOR_TOKEN_SHA256={hashlib.sha256(token.encode()).hexdigest()}\n"
    )


def test_a_file_that_is_not_a_token_is_refused_in_one_line(tmp_path: Path) -> None:
    kept = tmp_path / "lbs-operator-token"
    kept.write_text("hunter2")

    refused = CliRunner().invoke(main, ["operator-token", "--file", str(kept)])

    assert refused.exit_code == 1
    assert refused.output.strip() == f"Error: {kept}: not an operator token (lbs_op_…); remove it to make one"


def test_without_a_file_each_token_is_new() -> None:
    outputs = [CliRunner().invoke(main, ["operator-token"]).output for _ in range(2)]
    token, sha = (
        line.split(" ", 1)[1] if " " in line else line.split("=", 1)[1] for line in outputs[0].splitlines()
    )
    assert outputs[0] != outputs[1] and hashlib.sha256(token.encode()).hexdigest() == sha
