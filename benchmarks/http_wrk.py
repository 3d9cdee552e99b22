"""wrk for benchmarks/http_load.py: one run over a file of requests, and what its Lua reported."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

LUA = Path(__file__).resolve().parent / "http_rotate.lua"


@dataclass
class Wrk:
    requests: int
    duration_s: float
    non_2xx: int  # wrk's "status" errors: answers of 400 and above
    socket_errors: int  # connect + read + write
    timeouts: int
    p50_ms: float
    p99_ms: float
    sent: int  # requests written (the Lua request() calls)
    ok: int  # 200 answers
    items: int  # results in the 200 answers

    @property
    def per_s(self) -> float:
        return self.requests / self.duration_s if self.duration_s else 0.0

    @property
    def errors(self) -> str:
        return f"{self.non_2xx} / {self.socket_errors} / {self.timeouts}"

    @property
    def unanswered(self) -> int:
        return max(0, self.sent - self.requests)


@dataclass(frozen=True)
class Load:
    connections: int
    timeout_s: int
    close: bool  # a fresh connection per request (Connection: close) instead of keep-alive


def start_wrk(port: int, requests_file: Path, seconds: int, load: Load) -> subprocess.Popen[str]:
    """wrk with one thread for `seconds` against the loopback port, rotating over the file."""
    command = [
        "wrk", "-t1", f"-c{load.connections}", f"-d{seconds}s", f"--timeout={load.timeout_s}s",
        "-s", str(LUA), f"http://127.0.0.1:{port}", "--", str(requests_file),
        *(["close"] if load.close else []),
    ]  # fmt: skip
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish_wrk(process: subprocess.Popen[str], wait_s: float) -> Wrk:
    """Wait for wrk to end and read the line its done() printed."""
    stdout, stderr = process.communicate(timeout=wait_s)
    found = re.search(r"^WRK_RESULT (\{.*\})$", stdout, re.M)
    if process.returncode != 0 or found is None:
        raise SystemExit(f"wrk failed ({process.returncode}):\n{stdout}\n{stderr}")
    r = json.loads(found.group(1))
    return Wrk(
        requests=int(r["requests"]),
        duration_s=r["duration_us"] / 1e6,
        non_2xx=int(r["status"]),
        socket_errors=int(r["connect"] + r["read"] + r["write"]),
        timeouts=int(r["timeout"]),
        p50_ms=r["p50_us"] / 1e3,
        p99_ms=r["p99_us"] / 1e3,
        sent=int(r["sent"]),
        ok=int(r["ok"]),
        items=int(r["items"]),
    )


def requests_file(directory: Path, name: str, paths: Sequence[str], tokens: Sequence[str] = ()) -> Path:
    """One request a line for http_rotate.lua: path, and a token after a tab if any."""
    path = directory / f"{name}.txt"
    lines = [p if not tokens else f"{p}\t{tokens[i % len(tokens)]}" for i, p in enumerate(paths)]
    path.write_text("\n".join(lines) + "\n")
    return path


def run_wrk(port: int, requests_file: Path, seconds: int, load: Load) -> Wrk:
    process = start_wrk(port, requests_file, seconds, load)
    return finish_wrk(process, seconds + load.timeout_s + 120)
