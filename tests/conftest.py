"""Shared test set-up for the dashboard tests."""

import pytest
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
