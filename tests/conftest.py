"""Shared test set-up: the repository root, and one thread for small numeric problems."""

from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def one_thread():
    """Run a module's small problems on one thread: on a busy 2-core machine every parallel region of a
    small op waits for a time slice (GPTQ on 64 x 256: 0.04 s on one thread, 0.4-0.7 s on two). Thread count
    does not change what is asserted."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
