"""`lbs serve`'s gunicorn settings fix glibc's mmap threshold: after a large temporary is
freed, the next large one still gets its own mapping (returned when freed) instead of heap
pages that stay with the worker."""

from __future__ import annotations

import subprocess
import sys

import pytest

PROBE = """
import sys
import numpy as np
if sys.argv[1] == "fixed":
    import lbs.gunicorn_conf  # fixes the threshold on import, as in gunicorn's master
big = np.ones(16 * 1024 * 1024, dtype=np.uint8)  # an mmapped block, freed: glibc's
del big                                          # dynamic threshold rises to its size
block = np.ones(6 * 1024 * 1024, dtype=np.uint8)
address = block.ctypes.data
for line in open("/proc/self/maps"):
    span, *rest = line.split()
    start, end = (int(x, 16) for x in span.split("-"))
    if start <= address < end:
        print(rest[-1] if len(rest) == 5 else "[anon]")
"""


def mapping_of_a_large_block(mode: str) -> str:
    done = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True, check=True)
    return done.stdout.strip()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator, /proc")
def test_a_large_block_after_a_larger_one_is_its_own_mapping() -> None:
    assert mapping_of_a_large_block("default") == "[heap]"  # glibc's own behaviour
    assert mapping_of_a_large_block("fixed") == "[anon]"
