"""`start_early`: the CLI starts an embedded Ray in the background while it imports the
trainable; `connect` then uses that Ray, and a run that ends before `connect` stops it.

Each case runs in a fresh interpreter: the test session's own Ray is already up.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.slow

USED = """
import ray, signal
from tunefleet.cluster import connect, start_early
start_early(num_cpus=1)
with connect() as conn:
    assert conn.started_here and conn.cpus == 1, conn
    assert ray.get(ray.remote(lambda: 41 + 1).remote()) == 42
    assert signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL  # exits through Python
assert not ray.is_initialized()
print("used and stopped")
"""

DISCARDED = """
import ray, threading
from tunefleet.cluster import discard_early_start, start_early
start_early(num_cpus=1)
discard_early_start()  # the run failed before it connected
assert not ray.is_initialized()
assert [t.name for t in threading.enumerate()] == ["MainThread"]
discard_early_start()  # nothing left to do
print("discarded")
"""


def _python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=180
    )


def test_connect_uses_the_early_ray_and_shuts_it_down() -> None:
    proc = _python(USED)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "used and stopped"
    assert "SIGTERM handler is not set" not in proc.stderr


def test_an_unused_early_ray_is_stopped() -> None:
    proc = _python(DISCARDED)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "discarded"
