"""What a benchmark report says about its run: commit, machine, ratios, and its section of a doc."""

from __future__ import annotations

import argparse
import os
import platform
import re
import shlex
import subprocess
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
SECTIONS = ("postgresql", "sqlite")


def git_state() -> str:
    """The commit measured, and whether lbs/ or seed/ had uncommitted changes."""

    def git(*argv: str) -> str:
        return subprocess.run(
            ["git", *argv], cwd=ROOT, capture_output=True, text=True, timeout=30
        ).stdout.strip()

    dirty = git("status", "--porcelain", "--", "lbs", "seed")
    return git("rev-parse", "--short", "HEAD") + (
        " with uncommitted changes in lbs/ or seed/" if dirty else ""
    )


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo."""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return "unknown"


def run_facts(script: str, database_url: str, args: argparse.Namespace) -> dict[str, Any]:
    """What every database benchmark records about its run before it starts."""
    backend = make_url(database_url).get_backend_name()
    return {
        "kind": "sqlite" if backend == "sqlite" else "postgresql",
        "command": shlex.join([".venv/bin/python", f"benchmarks/{script}", *sys.argv[1:]]),
        "args": vars(args),
        "when": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "loadavg_start": os.getloadavg(),
        "git": git_state(),
    }


def report_heading(facts: dict[str, Any], packages: Sequence[str]) -> list[str]:
    """A database kind's section starts: title, the command, when, commit, machine, database."""
    return [
        f"## {'PostgreSQL' if facts['kind'] == 'postgresql' else 'SQLite'}",
        "",
        "```",
        facts["command"],
        "```",
        "",
        f"{facts['when']}, commit {facts['git']}. {machine(*packages)}. {facts['database']}.",
    ]


def load_line(facts: dict[str, Any]) -> str:
    """The load average at the start and end of the run, and its length."""
    start, end = ("/".join(f"{x:.2f}" for x in facts[key]) for key in ("loadavg_start", "loadavg_end"))
    return f"- Load average (1/5/15 min) at start {start}, at end {end}; whole run {facts['total_s']:.0f} s "


def machine(*packages: str) -> str:
    """Cores, CPU, RAM, Python and the versions of the named packages."""
    cpu = cpu_model()
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    versions = "".join(f", {name} {version(name)}" for name in packages)
    return (
        f"nproc {len(os.sched_getaffinity(0))}, CPU {cpu}, RAM {ram:.0f} GiB, "
        f"Python {platform.python_version()}{versions}"
    )


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}" if b else "—"


def write_section(path: Path, header: str, kind: str, section: str) -> None:
    """Replace this database kind's section of the report, keep the other one."""
    existing = path.read_text() if path.exists() else ""
    parts: dict[str, str] = {}
    for name in SECTIONS:
        found = re.search(rf"<!-- BEGIN {name} -->\n(.*?)<!-- END {name} -->\n", existing, re.S)
        if found:
            parts[name] = found.group(1)
    parts[kind] = section
    body = [header]
    for name in SECTIONS:
        if name in parts:
            body.append(f"<!-- BEGIN {name} -->\n{parts[name]}<!-- END {name} -->\n")
    path.write_text("\n".join(body))
