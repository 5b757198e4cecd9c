"""Job streams from the real traces: shapes, scaling, determinism, bad files."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from appliance.state import JobKind
from appliance.workloads.streams import (
    StreamError,
    StreamSpec,
    azure_gaps_s,
    generate,
    planetlab_days,
    read_jsonl,
    record_to_job,
    write_jsonl,
)
from tests.conftest import make_config

START = datetime(2016, 1, 1, tzinfo=UTC)
CONFIG = make_config()


@pytest.fixture(scope="module")
def traces() -> tuple[np.ndarray, np.ndarray]:
    return azure_gaps_s(), planetlab_days()


def test_traces_are_the_real_files(traces: tuple[np.ndarray, np.ndarray]) -> None:
    gaps, days = traces
    assert len(gaps) > 28_000 and 0.05 < gaps.mean() < 0.5  # ~5 requests/s in the Azure hour
    assert days.shape == (11_746, 288) and 0.05 < days.mean() < 0.2  # PlanetLab mean ~11 %


def test_stream_is_scaled_to_the_energy_constrained_box(
    traces: tuple[np.ndarray, np.ndarray],
) -> None:
    gaps, days = traces
    spec = StreamSpec(start=START, days=60, daily_pv_wh=9000.0, seed=1)
    recs = generate(spec, CONFIG, gaps_s=gaps, vm_days=days)
    base = (CONFIG.loads.base_w + CONFIG.compute.idle_w) * 24
    crit = [r for r in recs if r["kind"] == "critical"]
    dfr = [r for r in recs if r["kind"] == "deferrable"]
    assert len(crit) == 1 and crit[0]["energy_wh"] is None and crit[0]["deadline"] is None
    fixed_and_deferrable = base + crit[0]["power_w"] * 24 + sum(r["energy_wh"] for r in dfr) / 60
    assert 9000.0 / fixed_and_deferrable == pytest.approx(1.5, rel=0.02)
    assert 4.0 <= len(dfr) / 60 <= 8.0  # ~6 a day, bursty
    sizes = np.array([r["energy_wh"] for r in dfr])
    assert sizes.max() > 4 * np.median(sizes)  # the heavy tail of real VM-days survives
    for r in dfr:
        arrival, deadline = (
            datetime.fromisoformat(r["arrival"]),
            datetime.fromisoformat(r["deadline"]),
        )
        assert deadline - arrival >= timedelta(hours=8)
        assert deadline - arrival >= timedelta(hours=1.99 * r["energy_wh"] / r["power_w"])
        assert r["power_w"] <= CONFIG.compute.max_w - CONFIG.compute.idle_w
    sponges = [r for r in recs if r["kind"] == "sponge"]
    assert len(sponges) == 9 and all(r["deadline"] is None for r in sponges)
    assert [r["arrival"] for r in recs] == sorted(r["arrival"] for r in recs)


def test_deterministic_by_seed(traces: tuple[np.ndarray, np.ndarray]) -> None:
    gaps, days = traces
    spec = StreamSpec(start=START, days=5, daily_pv_wh=9000.0, seed=7)
    a = generate(spec, CONFIG, gaps_s=gaps, vm_days=days)
    assert a == generate(spec, CONFIG, gaps_s=gaps, vm_days=days)
    other = generate(
        StreamSpec(start=START, days=5, daily_pv_wh=9000.0, seed=8),
        CONFIG,
        gaps_s=gaps,
        vm_days=days,
    )
    assert a != other


def test_jobs_file_round_trip_and_errors(
    tmp_path: Path, traces: tuple[np.ndarray, np.ndarray]
) -> None:
    gaps, days = traces
    recs = generate(
        StreamSpec(start=START, days=3, daily_pv_wh=9000.0), CONFIG, gaps_s=gaps, vm_days=days
    )
    path = write_jsonl(recs, tmp_path / "jobs.jsonl")
    back = read_jsonl(path)
    assert back == recs
    jobs = [record_to_job(r) for r in back]
    assert {j.kind for j in jobs} == {JobKind.CRITICAL, JobKind.DEFERRABLE, JobKind.SPONGE}
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(recs[0]) + "\n{oops\n")
    with pytest.raises(StreamError, match=r"bad.jsonl:2: not JSON"):
        read_jsonl(bad)
    bad.write_text(json.dumps({"id": "x", "kind": "deferrable"}) + "\n")
    with pytest.raises(StreamError, match="missing arrival, deadline, energy_wh, power_w, value"):
        read_jsonl(bad)
    rec = dict(recs[-1], kind="deferrable", deadline=None)
    with pytest.raises(StreamError, match="needs energy_wh and deadline"):
        record_to_job(rec)
    with pytest.raises(StreamError, match="needs a UTC offset|times need"):
        record_to_job(dict(recs[0], arrival="2016-01-01T00:00:00"))
    with pytest.raises(StreamError, match="critical load"):
        generate(
            StreamSpec(start=START, days=3, daily_pv_wh=30000.0, critical_share=0.9),
            CONFIG,
            gaps_s=gaps,
            vm_days=days,
        )
