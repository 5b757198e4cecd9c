"""Coalesce register ranges into as few reads as Modbus allows (<= 125 registers each)."""

from __future__ import annotations

from collections.abc import Iterable

MAX_REGISTERS_PER_READ = 125


def coalesce(ranges: Iterable[tuple[int, int]], max_gap: int = 8,
             max_count: int = MAX_REGISTERS_PER_READ) -> list[tuple[int, int]]:
    """Merge (start, count) ranges into reads; gaps up to ``max_gap`` registers are read through.

    A range longer than ``max_count`` is split. Returns (start, count) reads in address order.
    """
    spans = sorted((s, s + c) for s, c in ranges if c > 0)
    merged: list[list[int]] = []
    for start, end in spans:
        if merged and start <= merged[-1][1] + max_gap:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    reads: list[tuple[int, int]] = []
    for start, end in merged:
        pos = start
        while pos < end:
            count = min(max_count, end - pos)
            reads.append((pos, count))
            pos += count
    return reads


def slice_words(reads: dict[int, list[int]], start: int, count: int) -> list[int] | None:
    """Registers [start, start+count) out of completed reads (keyed by their start), or None."""
    out: list[int] = []
    pos = start
    for rstart in sorted(reads):
        words = reads[rstart]
        rend = rstart + len(words)
        if rstart <= pos < rend:
            take = min(rend, start + count) - pos
            out.extend(words[pos - rstart : pos - rstart + take])
            pos += take
            if pos >= start + count:
                return out
    return out if len(out) == count else None
