"""The progress callback every long computation takes, from training to whole-model runs.

    progress(done, total, label)

`done` of `total` steps are finished and `label` names what the step was. Callers draw it (the CLI's stderr
bar, the dashboard's st.progress); qcore only reports.
"""

from __future__ import annotations

from collections.abc import Callable

Progress = Callable[[int, int, str], None]
