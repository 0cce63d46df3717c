"""Drift against the same hours one cycle earlier: what tells a recurring shift from a new one.

A model's world has cycles (the weekend basket mix, night-time traffic). Against the training
reference such a shift "drifts" every cycle; against the same hours of the cycle before it does
not, because it was there then too. Where a model's watch config sets ``drift.seasonality``,
the drift tool therefore also compares the current window with the same window one period
earlier, read from the same data source (:class:`tools.SeasonalDriftPort`), with the same
Evidently tests, Holm correction and importance weights as the training comparison.

The result never pretends: a backend without a history of inputs says ``unavailable``, a
window one period back with no rows says ``no_data``, and a reference too small to show drift
is never taken as evidence that drift is absent.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from supervisor._errors import BackendError

from ._drift import DRIFT_SHARE_THRESHOLD, SeasonalReference, family_drifted
from ._ports import DriftReport, NoSeasonalHistory, SeasonalDriftPort
from ._toolkit import ToolContext

__all__ = [
    "ABSENT_SHARE",
    "ABSENT_SHIFT",
    "MIN_SEASONAL_ROWS",
    "SeasonalDrift",
    "seasonal_drift",
]

#: Fewest rows on each side before "no drift against last cycle" counts as evidence. Evidently
#: uses the two-sample K-S test up to 1000 rows; at 200 rows a side its critical distance at
#: alpha 0.05 is 1.36 * sqrt(2 / 200) = 0.136, while a 0.5-standard-deviation shift moves a
#: normal CDF by 0.197, so such a shift is seen. With fewer rows an absent verdict is mostly
#: a lack of power, and calling drift "recurring" on it would mask new drift.
MIN_SEASONAL_ROWS = 200

#: Drift is absent against last cycle only while the drifted features (Holm-corrected) carry
#: less than a quarter of the model's importance: the drift tool's own lower bar
#: (``CORROBORATED_SHARE``), at which drift already counts when the outputs follow. Absence
#: uses the lower bar on purpose: drift half-present last cycle is not "the same as last cycle".
ABSENT_SHARE = 0.25

#: ... and while the outputs moved less than the drift tool's "clearly moved" bar against last
#: cycle's outputs (normed Wasserstein 0.25, above the ~0.17 sampling noise of 500-row windows).
ABSENT_SHIFT = 0.25


class SeasonalDrift(BaseModel):
    """The current window against the same hours one cycle earlier."""

    model_config = ConfigDict(extra="forbid")

    status: Literal["ok", "no_data", "unavailable", "error"] = Field(
        description="ok: compared; no_data: one of the windows holds no rows; unavailable: the "
        "drift backend keeps no history of inputs (or the period is shorter than the window); "
        "error: the backend failed. Only ok decides anything."
    )
    period: str = Field(description="Length of one cycle, e.g. 7d.")
    reference_window: str = Field(description="Which rows of the earlier cycle: same_hours.")
    reference_start: datetime | None = Field(
        default=None, description="Start of last cycle's window (the seasonal reference)."
    )
    reference_end: datetime | None = Field(default=None, description="Its end (exclusive).")
    reference_rows: int = Field(default=0, description="Rows in last cycle's window.")
    current_rows: int = Field(default=0, description="Rows in the current window.")
    drift_share: float | None = Field(
        default=None, description="Share of features drifted against last cycle."
    )
    weighted_drift_share: float | None = Field(
        default=None,
        description="Share of the model's importance carried by features drifted against last "
        "cycle (Holm-corrected), 0..1.",
    )
    drifted_features: list[str] = Field(
        default_factory=list, description="Features drifted against last cycle (Holm-corrected)."
    )
    prediction_drift_score: float | None = Field(
        default=None, description="Normed Wasserstein distance of the outputs to last cycle's."
    )
    drift_absent: bool = Field(
        default=False,
        description="Nothing that counts as drift against last cycle: drifted features carry "
        f"under {ABSENT_SHARE} of the importance, the outputs moved under {ABSENT_SHIFT}, no "
        f"dataset drift, on at least {MIN_SEASONAL_ROWS} rows a side. False when undecided.",
    )
    note: str = Field(description="The comparison in words, or why there is none.")


def seasonal_drift(
    ctx: ToolContext,
    model: str,
    window_minutes: int,
    setting: SeasonalReference,
) -> SeasonalDrift:
    """Compare ``model``'s last ``window_minutes`` with the same window one period earlier."""
    end = ctx.clock.now()
    window = timedelta(minutes=window_minutes)
    ref_start, ref_end = end - setting.delta - window, end - setting.delta

    def empty(status: Literal["no_data", "unavailable", "error"], note: str) -> SeasonalDrift:
        return SeasonalDrift(
            status=status,
            period=setting.period,
            reference_window=setting.reference_window,
            reference_start=ref_start,
            reference_end=ref_end,
            note=note,
        )

    if setting.period_minutes < window_minutes:
        return empty(
            "unavailable",
            f"no seasonal reference available: the period {setting.period} is shorter "
            f"than the {window_minutes}-minute window, so the two windows would overlap",
        )
    port = ctx.backends.drift
    if not isinstance(port, SeasonalDriftPort):
        return empty(
            "unavailable",
            "no seasonal reference available: the drift backend keeps no history of inputs",
        )
    try:
        rep = port.seasonal_report(model, window=window, period=setting.delta, end=end)
    except NoSeasonalHistory as err:
        return empty("unavailable", f"no seasonal reference available: {err}")
    except BackendError as err:
        return empty("error", f"the seasonal reference could not be read: {err}")
    if rep is None:
        return empty(
            "no_data",
            f"no seasonal reference available: no inputs were logged in the same "
            f"{window_minutes} minutes {setting.period} earlier",
        )
    return _compared(rep, setting, ref_start, ref_end)


def _compared(
    rep: DriftReport, setting: SeasonalReference, ref_start: datetime, ref_end: datetime
) -> SeasonalDrift:
    weighted = rep.drift_share if rep.weighted_drift_share is None else rep.weighted_drift_share
    shift = None if rep.prediction_drift is None else rep.prediction_drift.score
    drifted = family_drifted(rep.features)
    enough = min(rep.reference_rows, rep.current_rows) >= MIN_SEASONAL_ROWS
    absent = (
        enough
        and weighted < ABSENT_SHARE
        and rep.drift_share < DRIFT_SHARE_THRESHOLD
        and (shift is None or shift < ABSENT_SHIFT)
    )
    period = setting.period
    if not enough:
        note = (
            f"last cycle's window ({period} earlier) holds {rep.reference_rows} rows and the "
            f"current {rep.current_rows}; at least {MIN_SEASONAL_ROWS} a side are needed to "
            "call drift absent, so the comparison decides nothing"
        )
    elif absent:
        note = (
            f"against the same hours {period} earlier ({rep.reference_rows} rows vs "
            f"{rep.current_rows}) the inputs did not drift: drifted features carry "
            f"{weighted:.2f} of the importance, outputs moved {_score(shift)}"
        )
    else:
        note = (
            f"against the same hours {period} earlier ({rep.reference_rows} rows vs "
            f"{rep.current_rows}) the inputs drifted too: drifted features carry "
            f"{weighted:.2f} of the importance, outputs moved {_score(shift)}"
        )
    return SeasonalDrift(
        status="ok",
        period=setting.period,
        reference_window=setting.reference_window,
        reference_start=ref_start,
        reference_end=ref_end,
        reference_rows=rep.reference_rows,
        current_rows=rep.current_rows,
        drift_share=round(rep.drift_share, 4),
        weighted_drift_share=round(weighted, 4),
        drifted_features=[f for f, d in drifted.items() if d],
        prediction_drift_score=None if shift is None else round(shift, 6),
        drift_absent=absent,
        note=note,
    )


def _score(shift: float | None) -> str:
    return "unknown (outputs not logged)" if shift is None else f"{shift:.3f}"
