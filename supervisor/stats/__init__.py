"""Statistics for decisions: tests, intervals and minimum sample sizes (scipy/statsmodels).

Sits at the bottom of the dependency graph beside ``supervisor.domain``: tools, reasoners,
incident checks and policy may all import it; it imports nothing of the project.
"""

from ._inference import (
    Alternative,
    EffectKind,
    Interval,
    difference_interval,
    fisher_exact,
    holm_reject,
    mann_whitney,
    min_minutes_rank_test,
    min_samples_for_effect,
    min_samples_one_proportion,
    min_samples_two_proportions,
    one_proportion_test,
    two_proportion_test,
    wilson_interval,
)

__all__ = [
    "Alternative",
    "EffectKind",
    "Interval",
    "difference_interval",
    "fisher_exact",
    "holm_reject",
    "mann_whitney",
    "min_minutes_rank_test",
    "min_samples_for_effect",
    "min_samples_one_proportion",
    "min_samples_two_proportions",
    "one_proportion_test",
    "two_proportion_test",
    "wilson_interval",
]
