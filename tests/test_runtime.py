"""Process settings qcore makes before torch loads."""

import os
import subprocess
import sys

from tests.conftest import ROOT


def policy_seen(env: dict) -> str:
    code = "import qcore, os; print(os.environ['OMP_WAIT_POLICY'])"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    return out.stdout.strip()


def test_torch_threads_sleep_between_parallel_regions_unless_the_user_says_otherwise():
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    assert policy_seen(env) == "PASSIVE"
    assert policy_seen({**env, "OMP_WAIT_POLICY": "ACTIVE"}) == "ACTIVE"
