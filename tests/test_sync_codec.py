"""Compact encodings: telemetry blocks, frames and batches, alarm/job/summary payloads."""

from __future__ import annotations

import math
import random
from datetime import UTC, date, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from appliance.state import Event, EventKind, Job, JobKind, JobState, Severity
from appliance.sync.codec import (
    Series,
    TelemetryBlock,
    decode_block,
    default_resolution,
    downsample,
    encode_block,
    resolution_from,
)
from appliance.sync.messages import (
    DailySummary,
    decode_daily_summary,
    decode_event,
    decode_job_result,
    encode_daily_summary,
    encode_event,
    encode_job_result,
)
from appliance.sync.varint import DecodeError
from appliance.sync.wire import (
    Batch,
    Frame,
    InboundItem,
    decode_batch,
    decode_inbound_list,
    encode_batch,
    encode_inbound,
    encode_inbound_list,
)

T0 = 1_717_200_000_000  # ms, a whole second
SBD_MO_BYTES = 340


def _minute_axis(n: int) -> tuple[int, ...]:
    return tuple(T0 + i * 60_000 for i in range(n))


def test_quantised_channels_within_half_a_step_and_exact_channels_exact() -> None:
    rng = random.Random(3)
    ts = _minute_axis(1440)
    pv = tuple(
        max(0.0, 2500 * math.sin(i / 1440 * math.pi) + rng.gauss(0, 30)) for i in range(1440)
    )
    soc = tuple(40 + i * 0.021 for i in range(1440))
    odd = tuple(rng.random() * 1e-3 for _ in range(1440))  # no unit suffix: kept exact
    irregular = tuple(sorted(rng.sample(range(T0, T0 + 86_400_000), 200)))
    volts = tuple(48 + rng.random() for _ in irregular)
    block = TelemetryBlock(
        (
            Series("pv_power_w", ts, pv),
            Series("soc_pct", ts, soc),
            Series("ratio_x", ts, odd),
            Series("battery_voltage_v", irregular, volts),
        ),
        60,
    )
    data = encode_block(block)
    back = decode_block(data)
    assert [s.channel for s in back.series] == [
        "pv_power_w",
        "soc_pct",
        "ratio_x",
        "battery_voltage_v",
    ]
    assert back.step_s == 60
    for orig, got in zip(block.series, back.series, strict=True):
        assert got.ts_ms == orig.ts_ms
        step = default_resolution(orig.channel)
        for a, b in zip(orig.values, got.values, strict=True):
            if step is None:
                assert a == b
            else:
                assert abs(a - b) <= step / 2 + 1e-9
    smooth = TelemetryBlock(block.series[:2], 60)  # noisy power and slow SoC: quantised
    assert len(encode_block(smooth)) / smooth.points < 1.5


def test_nan_and_infinite_values_fall_back_to_exact_encoding() -> None:
    ts = _minute_axis(4)
    block = TelemetryBlock((Series("pv_power_w", ts, (1.0, math.nan, math.inf, -2.5)),))
    got = decode_block(encode_block(block)).series[0].values
    assert got[0] == 1.0 and math.isnan(got[1]) and got[2] == math.inf and got[3] == -2.5


def test_resolution_overrides_and_lossless_mode() -> None:
    ts = _minute_axis(3)
    block = TelemetryBlock((Series("pv_power_w", ts, (1234.567, 1240.2, 1251.9)),))
    coarse = decode_block(encode_block(block, resolution_from({"pv_power_w": 10.0})))
    assert coarse.series[0].values == (1230.0, 1240.0, 1250.0)
    exact = decode_block(encode_block(block, resolution_from({}, lossless=True)))
    assert exact.series[0].values == block.series[0].values


def test_downsample_means_and_counters() -> None:
    ts = _minute_axis(10)
    block = TelemetryBlock(
        (
            Series("pv_power_w", ts, tuple(float(i) for i in range(10))),
            Series("pv_energy_wh", ts, tuple(100.0 + i for i in range(10))),
        ),
        60,
    )
    coarse = downsample(block, 300)
    pv, energy = coarse.series
    assert coarse.step_s == 300
    assert T0 % 300_000 == 0
    assert pv.ts_ms == (T0, T0 + 300_000)
    assert pv.values == (2.0, 7.0)  # means of minutes 0-4 and 5-9
    assert energy.values == (104.0, 109.0)  # counters keep the last reading
    assert sum(len(s.values) for s in coarse.series) < block.points


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(1, 10_000), st.floats(-1e6, 1e6, allow_nan=False)),
        min_size=1,
        max_size=80,
    )
)
def test_roundtrip_property(points: list[tuple[int, float]]) -> None:
    ts: list[int] = []
    t = T0
    for gap, _ in points:
        t += gap * 1000
        ts.append(t)
    values = tuple(v for _, v in points)
    block = TelemetryBlock(
        (Series("battery_power_w", tuple(ts), values), Series("x", tuple(ts), values))
    )
    back = decode_block(encode_block(block))
    assert back.series[0].ts_ms == tuple(ts)
    assert all(abs(a - b) <= 0.5 + 1e-6 for a, b in zip(values, back.series[0].values, strict=True))
    assert back.series[1].values == values


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_garbage_raises_decode_error_only(data: bytes) -> None:
    for decode in (
        decode_block,
        decode_batch,
        decode_inbound_list,
        decode_event,
        decode_daily_summary,
        decode_job_result,
    ):
        try:
            decode(data)
        except DecodeError:
            pass


def test_truncated_block_is_a_clear_error() -> None:
    block = TelemetryBlock(
        (Series("soc_pct", _minute_axis(50), tuple(50.0 + i for i in range(50))),)
    )
    data = encode_block(block, compression="none")
    for cut in (1, 5, len(data) // 2, len(data) - 1):
        with pytest.raises(DecodeError):
            decode_block(data[:cut])
    with pytest.raises(DecodeError, match="version"):
        decode_block(b"\x09" + data[1:])


def _one_frame_message(kind: str, stream: str, payload: bytes) -> bytes:
    frame = Frame(kind, stream, 123_456, datetime(2024, 1, 1, tzinfo=UTC), payload)
    return encode_batch(Batch(2**31 - 1, (frame,)))


def test_alarm_and_daily_summary_each_fit_one_sbd_message() -> None:
    alarm = Event(
        at=datetime(2024, 3, 3, 3, 3, tzinfo=UTC),
        kind=EventKind.ALARM,
        severity=Severity.ALARM,
        source="battery-bms-with-a-long-device-name-" * 3,
        message="Cell 12 over-voltage 3.75 V, charge FET opened, balancing failed; " * 30,
        data={"cells": [3.3 + i / 100 for i in range(16)], "fault_bits": "0b1101"},
    )
    message = _one_frame_message("alarm", "alarm", encode_event(alarm))
    assert len(message) <= SBD_MO_BYTES
    back = decode_event(decode_batch(message).frames[0].payload)
    assert back.severity == Severity.ALARM and back.kind == EventKind.ALARM
    assert back.message.startswith("Cell 12 over-voltage 3.75 V") and back.at == alarm.at

    small = Event(
        at=alarm.at,
        kind=EventKind.ALARM,
        severity=Severity.ALARM,
        source="inverter",
        message="Over-temperature",
        data={"temp_c": 91.5},
    )
    assert decode_event(encode_event(small)).data == {"temp_c": 91.5}  # data kept when it fits

    summary = DailySummary(
        day=date(2024, 3, 2),
        pv_energy_wh=18_432.4,
        load_energy_wh=9_876.5,
        compute_energy_wh=6_543.2,
        battery_charge_wh=7_654.3,
        battery_discharge_wh=5_432.1,
        soc_min_pct=31.2,
        soc_max_pct=98.7,
        soc_end_pct=55.5,
        room_temp_min_c=17.8,
        room_temp_max_c=21.4,
        telemetry_coverage_pct=99.3,
        jobs_done=123,
        jobs_failed=4,
        jobs_missed=1,
        alarms=2,
        warnings=17,
        outbox_depth=2345,
    )
    message = _one_frame_message("daily_summary", "summary", encode_daily_summary(summary))
    assert len(message) <= SBD_MO_BYTES
    back_summary = decode_daily_summary(decode_batch(message).frames[0].payload)
    assert back_summary.day == summary.day
    assert back_summary.pv_energy_wh == 18_432 and back_summary.soc_min_pct == 31.2
    assert back_summary.room_temp_max_c == 21.4 and back_summary.jobs_done == 123
    assert (
        decode_daily_summary(encode_daily_summary(DailySummary(day=date(2024, 3, 2)))).pv_energy_wh
        is None
    )


def test_job_result_roundtrip_and_fits() -> None:
    for code in (None, 0, 1, -9):
        job = Job(
            id="job-" + "9" * 100,
            name="render frames",
            kind=JobKind.DEFERRABLE,
            power_w=120,
            energy_wh=300.0,
            deadline=None,
            state=JobState.FAILED if code else JobState.DONE,
            exit_code=code,
            energy_used_wh=123.4,
            cpu_s=3600.5,
            reason="killed: " + "z" * 500,
            started_at=datetime(2024, 1, 1, 8, tzinfo=UTC),
            finished_at=datetime(2024, 1, 1, 9, tzinfo=UTC),
        )
        payload = encode_job_result(job)
        assert len(_one_frame_message("job_result", "job", payload)) <= SBD_MO_BYTES
        got = decode_job_result(payload)
        assert (
            got["exit_code"] == code and got["energy_used_wh"] == 123.4 and got["cpu_s"] == 3600.5
        )
        assert got["state"] == str(job.state) and got["finished_at"] == "2024-01-01T09:00:00+00:00"


def test_batches_and_inbound_lists_roundtrip() -> None:
    at = datetime(2024, 1, 1, tzinfo=UTC)
    frames = tuple(Frame("log", "log", i, at, f"line {i}".encode(), 0) for i in range(1, 50))
    assert decode_batch(encode_batch(Batch(7, frames))) == Batch(7, frames)
    weather = InboundItem(
        3, "weather", "forecast.csv", at, b"time,ghi_w_m2\n" + b"2024-01-01T00:00Z,0\n" * 500
    )
    raw = encode_inbound(weather)
    assert len(raw) < len(weather.payload) / 10  # compressed on the wire
    assert decode_inbound_list(encode_inbound_list([raw])) == [weather]
    with pytest.raises(DecodeError):
        decode_batch(encode_batch(Batch(7, frames)) + b"\x00")


def test_dates_out_of_range_are_decode_errors() -> None:
    """Found by hypothesis: a varint day count past year 9999 once escaped as OverflowError."""
    import pytest

    with pytest.raises(DecodeError, match="day out of range"):
        decode_daily_summary(b"\x01\x80\x80\x80\x02")
    with pytest.raises(DecodeError, match="timestamp out of range"):
        decode_event(b"\x01" + b"\xff" * 9 + b"\x01")
