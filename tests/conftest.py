"""Shared test set-up: the dashboard's page mode, and one thread for small numeric problems."""

import pytest
import torch
from streamlit.runtime.pages_manager import PagesManager


@pytest.fixture
def navigation_app(monkeypatch):
    """AppTest resets PagesManager.uses_pages_directory before every run, and with a pages/ folder next to
    app.py that selects Streamlit's legacy multipage mode, which runs a bare page file without app.py. In a
    server, st.navigation clears the flag for the life of the process; keep it cleared here the same way."""
    init = PagesManager.__init__

    def init_v2(self, *args, **kwargs):
        init(self, *args, **kwargs)
        PagesManager.uses_pages_directory = False

    monkeypatch.setattr(PagesManager, "__init__", init_v2)


@pytest.fixture(scope="module")
def one_thread():
    """Run a module's small problems on one thread: on a busy 2-core machine every parallel region of a
    small op waits for a time slice (GPTQ on 64 x 256: 0.04 s on one thread, 0.4-0.7 s on two). Thread count
    does not change what is asserted."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
