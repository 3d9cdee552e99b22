"""A py-spy profile of one server worker under load, summarised as where a request's time goes."""

from __future__ import annotations

import re
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

# "Session.execute (sqlalchemy/orm/session.py:2365)": py-spy's raw frames, paths relative to
# the sys.path entry they were imported from.
FRAME = re.compile(r"^(?P<function>.*) \((?P<file>[^()]*):(?P<line>\d+)\)$")
# A sample is inside a request when Flask's WSGI entry is on the stack; the others are the
# worker's own loop and its idle threads waiting for a connection.
REQUEST_ENTRY = "Flask.wsgi_app"
OWN_PACKAGES = ("lbs", "recommender")


def start_recording(pid: int, seconds: int, output: Path, rate: int = 100) -> subprocess.Popen[bytes]:
    """py-spy sampling pid for `seconds`, waiting threads included (--idle): a worker waiting
    on PostgreSQL is time a request spends, and the time the profile has to show. Without
    pausing the worker at each sample (--nonblocking), which would slow it and send the
    load to the other workers."""
    command = [
        str(Path(sys.executable).parent / "py-spy"), "record", "--idle", "--nonblocking", "--rate", str(rate),
        "--duration", str(seconds), "--pid", str(pid), "--format", "raw", "--output", str(output),
    ]  # fmt: skip
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


@dataclass(frozen=True)
class Frame:
    function: str
    file: str

    @property
    def package(self) -> str:
        top = self.file.split("/", 1)[0].removesuffix(".py")
        if top in sys.stdlib_module_names:
            return "python stdlib"
        return top or "?"

    @property
    def own(self) -> bool:
        return self.package in OWN_PACKAGES

    @property
    def name(self) -> str:
        return f"{self.file.removesuffix('.py')}:{self.function}"


def parse_frame(text: str) -> Frame:
    found = FRAME.match(text)
    return Frame(found["function"], found["file"]) if found else Frame(text, "")


@dataclass
class Profile:
    samples: int  # all samples of the worker's threads
    request_samples: int  # those inside a request
    innermost_own: Counter[str]  # the innermost lbs function of each request sample
    inclusive_own: Counter[str]  # lbs functions anywhere on the stack, once per sample
    leaf_package: Counter[str]  # the package of the running (or waiting) frame

    def share(self, n: int) -> float:
        return 100.0 * n / self.request_samples if self.request_samples else 0.0


def summarise(raw: str) -> Profile:
    """Where requests spend their time: the innermost lbs function on each sampled stack (its
    own code and the libraries it called), and the package of the frame actually running."""
    profile = Profile(0, 0, Counter(), Counter(), Counter())
    for line in raw.splitlines():
        stack_text, _, count_text = line.rpartition(" ")
        if not stack_text or not count_text.isdigit():
            continue
        count = int(count_text)
        profile.samples += count
        frames = [parse_frame(f) for f in stack_text.split(";")]
        if not any(f.function == REQUEST_ENTRY for f in frames):
            continue
        profile.request_samples += count
        own = [f for f in frames if f.own]
        innermost = own[-1].name if own else f"(no lbs frame; in {frames[-1].package})"
        profile.innermost_own[innermost] += count
        for name in {f.name for f in own}:
            profile.inclusive_own[name] += count
        profile.leaf_package[frames[-1].package] += count
    return profile


def render(profile: Profile, top: int = 15) -> list[str]:
    """Two Markdown tables: by lbs function, and by the package of the running frame."""
    if not profile.request_samples:
        return [f"No sample was inside a request ({profile.samples} samples in all)."]
    out = [
        f"{profile.request_samples:,} of {profile.samples:,} samples of the worker's threads were inside "
        "a request (waiting included: `py-spy record --idle`).",
        "",
        "| lbs function (innermost on the stack) | its code and the libraries it called | "
        "anywhere on the stack |",
        "| --- | ---: | ---: |",
    ]
    for name, n in profile.innermost_own.most_common(top):
        inclusive = profile.inclusive_own.get(name)
        shown = "—" if inclusive is None else f"{profile.share(inclusive):.1f} %"
        out.append(f"| `{name}` | {profile.share(n):.1f} % | {shown} |")
    rest = sum(n for _, n in profile.innermost_own.most_common()[top:])
    if rest:
        out.append(f"| (the others) | {profile.share(rest):.1f} % | |")
    out += ["", "| package of the running frame | share of request time |", "| --- | ---: |"]
    for package, n in profile.leaf_package.most_common(top):
        out.append(f"| {package} | {profile.share(n):.1f} % |")
    return out
