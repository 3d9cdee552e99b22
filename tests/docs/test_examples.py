"""Every shell example of README.md and docs/*.md that calls curl runs against the demo city,
and what it documents is what it answers (tests/docs/examples.py: the format).

The fixture is what `bash scripts/run` gives a newcomer: `lbs demo` on SQLite, the demo's
operator token in ./lbs-operator-token, payments through localstripe with the same test keys
(its webhook registered to the test's server), `lbs serve`; the examples run in a shell in that
directory, one after the other (variables carry from one to the next), with
http://127.0.0.1:8000 pointing at the test's server. Each curl must answer what its
documented output says: the problem's status when it documents a problem, else a 2xx.
The workers poll the database before every request (LBS_INDEX_REFRESH_S=0), so a write is
seen by the next command whichever worker answers it, as it is within about a second in a
deployment (docs/nearby.md).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from lbs.cli import main
from tests.docs.examples import Example, examples_of, mismatches, pattern
from tests.e2e.server import E2E_SECRET_KEY, Server, gunicorn
from tests.payments_support import localstripe_url, register_webhook, unregister_webhook

REPO = Path(__file__).resolve().parents[2]
DOCUMENTS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
DOCUMENTED_BASES = ("http://127.0.0.1:8000", "localhost:8000")
COMMAND_TIMEOUT_S = 60
# Writes the status of every curl to stderr, where the example's own output is not.
CURL_STATUS = "curl() { command curl -w '%{stderr}\\n::http %{http_code}::\\n' \"$@\"; }"
_STATUS = re.compile(r"::http (\d{3})::")
# What bash scripts/run sets when it starts localstripe.
STRIPE_SECRET_KEY = "sk_test_lbs_demo"
STRIPE_WEBHOOK_SECRET = "whsec_lbs_demo"


@dataclass(frozen=True)
class Demo:
    directory: Path
    operator_token_sha256: str
    # localstripe's URL: the Stripe API of the demo's payments.
    stripe_api: str


@pytest.fixture(scope="session")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Demo:
    """`lbs demo` once, as `bash scripts/run` makes it; each document gets a copy."""
    directory = tmp_path_factory.mktemp("demo")
    stripe_api = localstripe_url()
    seeded = CliRunner().invoke(main, ["demo"], env=demo_env(directory, stripe_api))
    assert seeded.exit_code == 0, seeded.output
    assert "deals to pay ahead: 5" in seeded.output, seeded.output
    token = CliRunner().invoke(main, ["operator-token", "--file", str(directory / "lbs-operator-token")])
    assert token.exit_code == 0, token.output
    return Demo(directory, token.output.strip().split("=", 1)[1], stripe_api)


def demo_env(directory: Path, stripe_api: str) -> dict[str, str]:
    return {
        "LBS_DATABASE_URL": f"sqlite:///{directory / 'lbs.sqlite3'}",
        "LBS_MODEL_DIR": str(directory / "lbs-models"),
        "LBS_SECRET_KEY": E2E_SECRET_KEY,
        "LBS_PAYMENT_PROVIDER": "stripe",
        "LBS_STRIPE_SECRET_KEY": STRIPE_SECRET_KEY,
        "LBS_STRIPE_WEBHOOK_SECRET": STRIPE_WEBHOOK_SECRET,
        "LBS_STRIPE_API_BASE": stripe_api,
    }


@pytest.fixture
def served_demo(demo: Demo, tmp_path: Path) -> Iterator[tuple[Server, Path]]:
    here = tmp_path / "clone"
    shutil.copytree(demo.directory, here)
    (here / ".venv").symlink_to(Path(sys.prefix))
    env = {**demo_env(here, demo.stripe_api), "LBS_WORKERS": "2"}
    with gunicorn(
        env["LBS_DATABASE_URL"],
        tmp_path,
        demo.operator_token_sha256,
        workers=2,
        refresh_s=0.0,
        env=env,
        serving_config=True,
    ) as server:
        # localstripe delivers every event to every webhook registered with it (other test
        # sessions' too): a server ignores those about intents it never made.
        hook = register_webhook(
            demo.stripe_api, f"{server.base_url}/v1/payments/stripe/webhook", STRIPE_WEBHOOK_SECRET
        )
        try:
            yield server, here
        finally:
            unregister_webhook(demo.stripe_api, hook)


class Shell:
    """Bash in the demo's directory; the exported variables carry from one command to the next."""

    def __init__(self, directory: Path, base_url: str, stripe_api: str) -> None:
        self.directory = directory
        self.base_url = base_url
        self.state = directory / ".example-state.sh"
        self.state.write_text("")
        self.env = {
            "PATH": os.environ["PATH"], "HOME": str(directory), "LANG": "C.UTF-8",
            **demo_env(directory, stripe_api),
        }  # fmt: skip

    def run(self, command: str) -> tuple[int, str, list[int]]:
        for documented in DOCUMENTED_BASES:
            command = command.replace(documented, self.base_url)
        script = "\n".join([CURL_STATUS, "set -a", f". {self.state}", command, "__status=$?",
                            f"export -p > {self.state}", "exit $__status"])  # fmt: skip
        done = subprocess.run(
            ["bash", "-c", script], cwd=self.directory, env=self.env, capture_output=True, text=True,
            timeout=COMMAND_TIMEOUT_S,
        )  # fmt: skip
        return done.returncode, done.stdout, [int(s) for s in _STATUS.findall(done.stderr)]


def _documented_status(expected: object) -> int | None:
    if isinstance(expected, dict) and isinstance(expected.get("status"), int) and "type" in expected:
        return int(expected["status"])  # a problem (RFC 9457)
    return None


def check(shell: Shell, example: Example) -> list[str]:
    """What is wrong with the example's answer: empty when it matches its documentation."""
    expected = pattern(example.expected) if example.expected else None
    problem_status = _documented_status(expected)
    status, out, http = shell.run(example.command)
    wrong = []
    if status != 0:
        wrong.append(f"exit status {status}; output: {out[:500]}")
    if problem_status is not None:
        wrong += [f"HTTP {s}, documented {problem_status}" for s in http[-1:] if s != problem_status]
    else:
        wrong += [f"HTTP {s}" for s in http if not 200 <= s < 400]
    if expected is not None and not wrong:
        try:
            wrong += mismatches(expected, json.loads(out))
        except json.JSONDecodeError:
            wrong.append(f"not JSON: {out[:500]}")
    return wrong


DOCUMENTED = [(path, examples_of(path, REPO)) for path in DOCUMENTS]


@pytest.mark.parametrize(
    "document", [path for path, found in DOCUMENTED if found], ids=lambda p: str(p.relative_to(REPO))
)
def test_every_example_answers_what_it_documents(
    document: Path, demo: Demo, served_demo: tuple[Server, Path]
) -> None:
    server, directory = served_demo
    shell = Shell(directory, server.base_url, demo.stripe_api)
    failures = []
    for example in examples_of(document, REPO):
        wrong = check(shell, example)
        if wrong:
            failures.append(
                f"{example.where}: {example.command.splitlines()[0][:100]}\n    " + "\n    ".join(wrong)
            )
    assert not failures, "\n".join(failures)


def test_the_examples_are_found_with_what_they_document() -> None:
    """The parser finds the README's tour: if it found nothing, the test above would prove nothing."""
    readme = dict(DOCUMENTED)[REPO / "README.md"]
    assert len(readme) >= 15 and sum(e.expected is not None for e in readme) >= 10
    claim = next(e for e in readme if "/claim" in e.command)
    assert claim.command.count("\n") == 1 and claim.expected and '"code"' in claim.expected
