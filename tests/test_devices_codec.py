"""Register decoding: sentinels, 32-bit and string types, scale factors; garbage never escapes."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from appliance.devices import sunspec, victron
from appliance.devices.codec import DecodeError, apply_scale, decode, encode
from appliance.devices.readplan import coalesce, slice_words
from appliance.devices.registers import sunspec_model, victron_points


def test_sentinels_are_none() -> None:
    assert decode([0x8000], "int16") is None
    assert decode([0x8000], "sunssf") is None
    assert decode([0xFFFF], "uint16") is None
    assert decode([0xFFFF], "enum16") is None
    assert decode([0xFFFF, 0xFFFF], "uint32") is None
    assert decode([0x8000, 0x0000], "int32") is None
    assert decode([0x0000, 0x0000], "acc32") == 0  # a counter at zero is a value


def test_signed_wide_and_strings() -> None:
    assert decode([0xFFFE], "int16") == -2
    assert decode([0x0001, 0x0002], "uint32") == 65538
    assert decode([0xFFFF, 0xFFFE], "int32") == -2
    assert decode(encode("Sunbox", "string", 4), "string", 4) == "Sunbox"
    assert decode([0, 0, 0], "string", 3) is None
    assert apply_scale(1234, -1) == pytest.approx(123.4)
    assert apply_scale(None, -1) is None
    with pytest.raises(DecodeError):
        decode([1], "uint32")


@given(st.lists(st.integers(0, 0xFFFF), min_size=0, max_size=80), st.sampled_from(
    ["int16", "uint16", "int32", "uint32", "acc32", "enum16", "bitfield32", "sunssf", "float32", "string"]))
def test_decode_random_words_only_raises_decode_error(words: list[int], type_name: str) -> None:
    size = max(1, len(words)) if type_name == "string" else None
    try:
        decode(words, type_name, size)
    except DecodeError:
        pass


@settings(max_examples=150)
@given(st.data())
def test_random_model_blocks_decode_without_exceptions(data: st.DataObject) -> None:
    """Any register contents, for every model we poll, decode to values or None, never raise."""
    for mid in (1, 101, 103, 124, 160, 802):
        model = sunspec_model(mid)
        n_modules = data.draw(st.integers(0, 3)) if model.group else 0
        length = model.length_value(n_modules)
        words = [mid, length] + data.draw(st.lists(st.integers(0, 0xFFFF), min_size=length, max_size=length))
        decoded = sunspec.decode_model(model, words)
        channels, alarms = sunspec.channels({mid: decoded})
        assert all(isinstance(v, float) for v in channels.values())
    start = 800
    words = data.draw(st.lists(st.integers(0, 0xFFFF), min_size=61, max_size=61))
    vals = victron.decode_registers(start, words)
    victron.channels(vals, victron.decode_registers(31, words[:34]))


def test_sunspec_scale_factors_and_channels() -> None:
    model = sunspec_model(802)
    words = [0] * (model.fixed_size)
    words[0], words[1] = 802, model.length_value()

    def put(name: str, raw: int) -> None:
        p = model.point(name)
        words[p.offset : p.offset + p.size] = encode(raw, p.type, p.size)

    put("SoC", 553)
    put("SoC_SF", -1)
    put("W", -1500)
    put("W_SF", 0)
    put("V", 512)
    put("V_SF", -1)
    put("A_SF", 0)
    put("Evt1", 1 << 1)  # OVER_TEMP_ALARM
    decoded = sunspec.decode_model(model, words)
    assert decoded["SoC"] == pytest.approx(55.3)
    channels, alarms = sunspec.channels({802: decoded})
    assert channels["soc_pct"] == pytest.approx(55.3)
    assert channels["battery_power_w"] == -1500
    assert channels["battery_voltage_v"] == pytest.approx(51.2)
    assert [a.code for a in alarms] == ["OVER_TEMP_ALARM"]
    # an implausible scale factor makes the value unknown rather than wrong by 10^12
    put("SoC_SF", 12)
    assert sunspec.decode_model(model, words)["SoC"] is None


def test_victron_map_is_loaded_from_the_official_list() -> None:
    pts = victron_points()
    assert pts[843].path == "/Dc/Battery/Soc" and pts[843].service == "system"
    assert pts[840].scale == 10 and pts[841].type == "int16"
    assert pts[2901].writable and not pts[843].writable
    assert pts[31].service == "vebus" and pts[33].writable
    values = victron.decode_registers(840, [523, (-125) & 0xFFFF, (-640) & 0xFFFF, 71])
    ch, _ = victron.channels(values, {})
    assert ch["battery_voltage_v"] == pytest.approx(52.3)
    assert ch["battery_current_a"] == pytest.approx(-12.5)
    assert ch["battery_power_w"] == -640 and ch["soc_pct"] == 71


def test_coalesce_respects_125_and_gaps() -> None:
    assert coalesce([(40002, 68), (40070, 52), (40122, 50), (40172, 26), (40198, 64)], max_gap=0) == [
        (40002, 125), (40127, 125), (40252, 10)]
    assert coalesce([(0, 1), (5, 1), (100, 2)], max_gap=8) == [(0, 6), (100, 2)]
    reads = {0: list(range(125)), 125: list(range(125, 130))}
    assert slice_words(reads, 120, 10) == list(range(120, 130))
    assert slice_words(reads, 128, 5) is None


async def _discover(base: int) -> sunspec.SunSpecLayout:
    regs: dict[int, int] = {}
    regs[base], regs[base + 1] = sunspec.SUNS_MARKER
    addr = base + 2
    for mid, n in ((1, 0), (101, 0), (160, 2), (124, 0), (802, 0)):
        length = sunspec_model(mid).length_value(n)
        regs[addr], regs[addr + 1] = mid, length
        addr += 2 + length
    regs[addr], regs[addr + 1] = 0xFFFF, 0
    calls: list[tuple[int, int]] = []

    async def read(address: int, count: int) -> list[int]:
        calls.append((address, count))
        if address not in regs:
            raise OSError("illegal address")
        return [regs.get(a, 0) for a in range(address, address + count)]

    layout = await sunspec.discover(read)
    assert layout.model_ids() == [1, 101, 160, 124, 802]
    assert len(calls) <= 6
    return layout


@pytest.mark.parametrize("base", [40000, 0, 50000])
def test_discovery_chain_at_each_base(base: int) -> None:
    import asyncio

    layout = asyncio.run(_discover(base))
    assert layout.base == base
    assert layout.blocks[0].address == base + 2
