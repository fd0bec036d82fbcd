"""The progress callback every long computation takes, from training to whole-model runs.

    progress(done, total, label)

`done` of `total` steps are finished and `label` names the step now running: a loop reports before each step's
work, not after it, so a slow step is named while it runs. Callers draw it (the CLI's stderr bar, the dashboard's
status); qcore only reports.
"""

from __future__ import annotations

from collections.abc import Callable

Progress = Callable[[int, int, str], None]
