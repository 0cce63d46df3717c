"""The fuzzing budget, shared by tests/test_fuzz_*.py.

CI runs a bounded budget; ``FUZZ_EXAMPLES=5000 pytest tests/test_fuzz_*.py`` is the longer run
(README, "Fuzzing").
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

#: Examples per fuzzed operation (and per generation mode) or property. 40 keeps the fuzz
#: tests together under a minute on two loaded cores in CI (each API example is an in-process
#: request, some of them an fsync'd audit write) while still reaching every route's refusals.
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "40"))

#: Derandomized (the same examples on every CI run: a failure reproduces, a pass is not luck)
#: unless a longer run asks for fresh ones with FUZZ_SEED=random; no deadline: one request
#: waits for the disk, and a slow disk is not a bug.
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=os.environ.get("FUZZ_SEED") != "random",
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
