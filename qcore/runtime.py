"""Process settings that must be in place before torch is first imported (qcore/__init__ imports this first).

OMP_WAIT_POLICY=PASSIVE: torch's OpenMP threads sleep when a parallel region ends instead of spinning for the
next one. On a CPU shared by several runs (dashboard sessions, a test run beside a build) spinning threads starve
each other: rtn with clipping on a 1536 x 384 matrix took 8.7-24.6 s with spinning threads beside other work on
2 cores, 0.6 s with sleeping ones (and about 1 s on one thread). A value set by the user is kept.
"""

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
