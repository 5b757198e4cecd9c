"""Online refinement of R and C from the box's own sensors."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from appliance.heat.online import OnlineRoomEstimator
from appliance.heat.room import RoomModel

TRUE = RoomModel(r_k_per_w=0.01, c_j_per_k=8.0e6)
T0 = datetime(2024, 1, 1, tzinfo=UTC)


def feed(est: OnlineRoomEstimator, days: int, *, excite: bool = True, gap_every: int = 0) -> int:
    """A room heated at night by a 300 W node, sampled each minute by a 0.1 K sensor."""
    rng = np.random.default_rng(5)
    temp, published = 18.0, 0
    for k in range(days * 1440):
        if gap_every and k % gap_every < 10:
            continue  # the sensor link drops out for 10 minutes
        at = T0 + timedelta(minutes=k)
        hour = k / 60 % 24
        if excite:
            outdoor = 8 + 5 * math.sin(2 * math.pi * (hour - 9) / 24)
            heat = 300.0 if (hour >= 18 or hour < 7) and temp < 21 else 0.0
        else:
            outdoor, heat = temp, 0.0
        if est.add(at, round(temp + rng.normal(0, 0.03), 1), outdoor, heat) is not None:
            published += 1
        temp = TRUE.step(temp, outdoor, heat, 60.0)
    return published


@pytest.mark.parametrize("prior", [RoomModel(0.02, 4e6), RoomModel(0.005, 1.6e7)])
def test_converges_from_a_prior_off_by_two(prior: RoomModel) -> None:
    est = OnlineRoomEstimator(prior, window_s=3 * 3600)
    assert feed(est, 7) > 0
    assert est.model.r_k_per_w == pytest.approx(TRUE.r_k_per_w, rel=0.05)
    assert est.model.c_j_per_k == pytest.approx(TRUE.c_j_per_k, rel=0.05)
    assert est.status.startswith("refined")
    # Persisted and restored, it carries on where it was.
    again = OnlineRoomEstimator(prior, window_s=3 * 3600)
    assert again.restore(est.to_dict()) and again.model == est.model
    assert not OnlineRoomEstimator(TRUE).restore(est.to_dict())  # different prior: refused


def test_no_excitation_keeps_the_prior() -> None:
    prior = RoomModel(0.02, 4e6)
    est = OnlineRoomEstimator(prior, window_s=3 * 3600)
    assert feed(est, 4, excite=False) == 0
    assert est.model == prior and est.updates == 0 and est.skipped >= 30
    assert "too little excitation" in est.status


def test_gappy_windows_are_dropped() -> None:
    est = OnlineRoomEstimator(RoomModel(0.02, 4e6), window_s=3 * 3600, max_gap_s=300)
    assert feed(est, 2, gap_every=120) == 0
    assert est.updates == 0 and "gap" in est.status


def test_estimate_outside_bounds_is_rejected() -> None:
    # A prior 10x off with a tight bound: the data pull it outside x1.5, so nothing is published.
    prior = RoomModel(0.1, 8e6)
    est = OnlineRoomEstimator(prior, window_s=3 * 3600, bound_factor=1.5)
    assert feed(est, 7) == 0
    assert est.model == prior and "estimate rejected" in est.status
