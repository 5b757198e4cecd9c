"""One link session: bring the link up, drain the outbox within the budget, fetch inbound.

Items leave by priority in batches. Each batch's worst-case cost is charged to the day's
budget before it leaves and corrected to the measured cost after; items are marked delivered
only on the hub's acknowledgement. Items of a stream leave strictly in order: when one cannot
go (budget, size), the rest of its stream waits behind it, and below a class of traffic that
waits for budget, every less important class waits too.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from appliance.clock import Clock
from appliance.config import LinkConfig, SunboxConfig
from appliance.store import Store, to_ms
from appliance.store.outbox import OutboxItem, Priority
from appliance.sync import budget as budget_rules
from appliance.sync.codec import Resolution, decode_block, downsample, encode_block
from appliance.sync.inbound import KV_INBOUND_CHECKED, InboundRouter, maybe_await
from appliance.sync.ledger import SyncLedger
from appliance.sync.links import max_priority, next_window_start, window_open
from appliance.sync.transports.base import Delivery, Transport, TransportError
from appliance.sync.varint import DecodeError
from appliance.sync.wire import BATCH_HEADER_MAX, FLAG_DOWNSAMPLED, Batch, Frame, encode_frame

KV_TELEMETRY_STEP = "sync.telemetry_step"
PowerSwitchFn = Callable[[str, bool], Awaitable[None] | None]


@dataclass
class LinkReport:
    link: str
    used: bool
    reason: str
    items_sent: int = 0
    bytes: int = 0
    error: str = ""


@dataclass
class SyncReport:
    at: datetime
    links: list[LinkReport] = field(default_factory=list)
    inbound: list[tuple[int, str, str]] = field(default_factory=list)  # id, kind, status

    @property
    def items_sent(self) -> int:
        return sum(r.items_sent for r in self.links)


class Courier:
    """Moves outbox items over one link at a time; shared state lives in the store."""

    def __init__(
        self,
        config: SunboxConfig,
        store: Store,
        ledger: SyncLedger,
        clock: Clock,
        router: InboundRouter,
        resolution: Resolution,
        power_switch: PowerSwitchFn | None = None,
        seed: int | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.ledger = ledger
        self.clock = clock
        self.router = router
        self.zone = config.site.zone
        self._resolution = resolution
        self._power_switch = power_switch
        self._rng = random.Random(seed)

    def _backoff_s(self, failures: int) -> float:
        cfg = self.config.sync
        base = min(cfg.backoff_max_s, cfg.backoff_min_s * 2 ** max(0, failures - 1))
        return base * (0.5 + 0.5 * self._rng.random())

    def eligibility(
        self,
        link: LinkConfig,
        now: datetime,
        energy_allows_w: float,
        pending: list[OutboxItem],
        inbound_due: bool,
    ) -> str | None:
        """None if the link may come up; else why not."""
        carries = [i for i in pending if i.priority <= max_priority(link)]
        if not carries and not inbound_due:
            return "idle: nothing this link carries is waiting"
        if not window_open(link, now, self.zone):
            nxt = next_window_start(link, now, self.zone)
            return f"window closed (opens {nxt.strftime('%H:%M') if nxt else '?'} local)"
        if link.modem_power_w > energy_allows_w + 1e-9:
            return (
                f"modem needs {link.modem_power_w:g} W, "
                f"the energy plan affords {energy_allows_w:g} W"
            )
        state = self.ledger.state(link.name)
        if state.backoff_until is not None and now < state.backoff_until:
            until = state.backoff_until.astimezone(self.zone).strftime("%H:%M:%S")
            return (
                f"backing off after {state.failures} failure(s) until {until} local: "
                f"{state.last_error}"
            )
        used = self.ledger.usage(link.name, budget_rules.budget_day(now, self.zone)).bytes_total
        if used >= link.daily_budget_bytes:
            return f"budget spent ({used} of {link.daily_budget_bytes} B today)"
        return None

    async def session(
        self,
        link: LinkConfig,
        transport: Transport,
        now: datetime,
        pending: list[OutboxItem],
        inbound_due: bool,
        report: SyncReport,
    ) -> tuple[LinkReport, bool]:
        lr = LinkReport(link.name, True, "up")
        t0 = self.clock.monotonic()
        day = budget_rules.budget_day(now, self.zone)
        if self._power_switch is not None:
            await maybe_await(self._power_switch(link.name, True))
        got_inbound = False
        try:
            if link.modem_warmup_s > 0:
                await self.clock.sleep(link.modem_warmup_s)
            try:
                await transport.open()
            except TransportError as exc:
                self._fail(link, now, day, exc, None, lr)
                return lr, False
            try:
                ok = await self._drain(link, transport, now, day, pending, lr)
                if ok and inbound_due:
                    got_inbound = await self._fetch_inbound(link, transport, now, day, report, lr)
            finally:
                await transport.close()
        finally:
            if self._power_switch is not None:
                await maybe_await(self._power_switch(link.name, False))
            on_s = max(0.0, self.clock.monotonic() - t0)
            self.ledger.add_usage(link.name, day, modem_on_s=on_s)
        return lr, got_inbound

    def _fail(
        self,
        link: LinkConfig,
        now: datetime,
        day: date,
        exc: TransportError,
        estimate: int | None,
        lr: LinkReport,
    ) -> None:
        if estimate is not None and exc.bytes_up is not None:
            # estimate was pre-charged to bytes_up; replace it by what was measured
            self.ledger.add_usage(
                link.name, day, bytes_up=exc.bytes_up - estimate, bytes_down=exc.bytes_down or 0
            )
        elif estimate is None and exc.bytes_up:
            self.ledger.add_usage(
                link.name, day, bytes_up=exc.bytes_up, bytes_down=exc.bytes_down or 0
            )
        failures = self.ledger.state(link.name).failures + 1
        until = now + timedelta(seconds=self._backoff_s(failures))
        self.ledger.record_failure(link.name, now, str(exc), until)
        lr.error = str(exc)
        lr.reason = f"failed: {exc}"

    def _frame(self, item: OutboxItem, step_s: float | None) -> Frame:
        payload, flags = item.payload, 0
        if step_s is not None and item.kind == "telemetry":
            try:
                block = decode_block(item.payload)
                if block.step_s < step_s:
                    payload = encode_block(downsample(block, step_s), self._resolution)
                    flags = FLAG_DOWNSAMPLED
            except DecodeError:
                payload = item.payload
        return Frame(item.kind, item.stream, item.seq, item.created_at, payload, flags)

    def _telemetry_choice(
        self,
        link: LinkConfig,
        transport: Transport,
        now: datetime,
        pending: list[OutboxItem],
        used: int,
    ) -> budget_rules.TelemetryChoice:
        """How telemetry goes on this link today, and what to reserve for what is still to come."""
        if max_priority(link) < Priority.TELEMETRY:
            return budget_rules.TelemetryChoice(None, "no telemetry on this link")
        cfg = self.config.sync
        per_request = transport.cost_upper_bound(0)
        seconds_left = budget_rules.seconds_left_today(now, self.zone)
        blocks_left = int(seconds_left // cfg.telemetry_interval_s)
        tel = [i for i in pending if i.priority == Priority.TELEMETRY]
        got = self.store.get_kv(KV_TELEMETRY_STEP)
        last_avg = float(got[0].get("avg_bytes", 0)) if got and isinstance(got[0], dict) else 0.0
        sizes = [len(i.payload) + 32 for i in tel]
        avg = sum(sizes) / len(sizes) if sizes else last_avg
        higher = sum(len(i.payload) + 32 for i in pending if i.priority < Priority.TELEMETRY)
        urgent = self._urgent_future(now, per_request, seconds_left)
        available = (
            budget_rules.allowance(link, used, urgent_future_bytes=urgent).for_priority(
                Priority.TELEMETRY
            )
            - higher
        )
        sample = tel[0] if tel else None

        def ratio(step: float) -> float | None:
            # Buckets must not straddle blocks: only steps that divide the block period.
            if sample is None or step > cfg.telemetry_interval_s or cfg.telemetry_interval_s % step:
                return None
            try:
                block = decode_block(sample.payload)
            except DecodeError:
                return None
            if step <= block.step_s:
                return 1.0
            smaller = encode_block(downsample(block, step), self._resolution)
            return len(smaller) / max(1, len(sample.payload))

        choice = budget_rules.choose_telemetry_step(
            pending_bytes=sum(sizes),
            future_payload_bytes=int(blocks_left * avg),
            future_blocks=blocks_left,
            available_bytes=max(0, available),
            base_step_s=cfg.telemetry_step_s,
            size_ratio=ratio,
            per_request_bytes=per_request,
            seconds_left_s=seconds_left,
            max_delay_s=cfg.telemetry_max_delay_s,
        )
        self.store.put_kv(
            KV_TELEMETRY_STEP,
            {
                "link": link.name,
                "step_s": choice.step_s,
                "hold": choice.hold,
                "reason": choice.reason,
                "future_bytes": choice.future_bytes,
                "avg_bytes": avg,
            },
            now,
        )
        return choice

    def _urgent_future(self, now: datetime, per_request: int, seconds_left: float) -> int:
        rows = self.store.query(
            "SELECT count(*) AS n, coalesce(sum(size_bytes), 0) AS b FROM outbox "
            "WHERE priority IN (?, ?) AND created_ms >= ?",
            (int(Priority.JOB_RESULT), int(Priority.DAILY_SUMMARY), to_ms(now - timedelta(days=1))),
        )
        return budget_rules.urgent_future_bytes(
            int(rows[0]["n"]), int(rows[0]["b"]) + 32 * int(rows[0]["n"]), per_request, seconds_left
        )

    async def _drain(
        self,
        link: LinkConfig,
        transport: Transport,
        now: datetime,
        day: date,
        pending: list[OutboxItem],
        lr: LinkReport,
    ) -> bool:
        """Send what this link may carry; False if the link failed."""
        carries = [i for i in pending if i.priority <= max_priority(link)]
        if not carries:
            return True
        used = self.ledger.usage(link.name, day).bytes_total
        choice = self._telemetry_choice(link, transport, now, carries, used)
        reserve_future = choice.future_bytes
        urgent = self._urgent_future(
            now, transport.cost_upper_bound(0), budget_rules.seconds_left_today(now, self.zone)
        )
        if choice.hold:
            # Telemetry rides along with other traffic, or goes once its oldest block is due.
            tel = [i for i in carries if i.priority == Priority.TELEMETRY]
            others = any(i.priority < Priority.TELEMETRY for i in carries)
            oldest_age_s = (now - tel[0].created_at).total_seconds() if tel else 0.0
            if tel and not others and oldest_age_s < self.config.sync.telemetry_max_delay_s:
                carries = [i for i in carries if i.priority < Priority.TELEMETRY]
        blocked: dict[str, str] = {}
        batch: list[tuple[OutboxItem, Frame, int]] = []
        batch_bytes = BATCH_HEADER_MAX

        async def flush() -> bool:
            nonlocal batch, batch_bytes
            if not batch:
                return True
            ok = await self._send_batch(link, transport, now, day, batch, lr)
            batch, batch_bytes = [], BATCH_HEADER_MAX
            return ok

        budget_stop: Priority | None = None  # below a class that waits for budget, all wait
        for item in carries:
            if item.stream in blocked:
                continue
            if budget_stop is not None and item.priority > budget_stop:
                blocked[item.stream] = f"waits behind {budget_stop.name.lower()} for budget"
                continue
            frame = self._frame(item, choice.step_s)
            size = len(encode_frame(frame))
            if BATCH_HEADER_MAX + size > link.max_message_bytes:
                blocked[item.stream] = (
                    f"item {item.idempotency_key} ({size} B) larger than the link's messages"
                )
                continue
            if batch and (
                batch_bytes + size > link.max_message_bytes or len(batch) >= link.batch_max_items
            ):
                if not await flush():
                    return False
            used = self.ledger.usage(link.name, day).bytes_total
            allow = budget_rules.allowance(link, used, reserve_future, urgent).for_priority(
                item.priority
            )
            if transport.cost_upper_bound(batch_bytes + size) > allow:
                if batch:
                    if not await flush():
                        return False
                    used = self.ledger.usage(link.name, day).bytes_total
                    allow = budget_rules.allowance(link, used, reserve_future, urgent).for_priority(
                        item.priority
                    )
                if transport.cost_upper_bound(batch_bytes + size) > allow:
                    blocked[item.stream] = (
                        f"waits for budget ({allow} B left for {item.priority.name.lower()})"
                    )
                    budget_stop = item.priority if budget_stop is None else budget_stop
                    continue
            batch.append((item, frame, size))
            batch_bytes += size
        if not await flush():
            return False
        notes = [f"sent {lr.items_sent} item(s)"]
        if choice.step_s is not None:
            notes.append(choice.reason)
        notes += [f"{s} {why}" for s, why in sorted(blocked.items())]
        lr.reason = "; ".join(notes)
        self.ledger.record_decision(link.name, lr.reason, now)
        return True

    async def _send_batch(
        self,
        link: LinkConfig,
        transport: Transport,
        now: datetime,
        day: date,
        batch: list[tuple[OutboxItem, Frame, int]],
        lr: LinkReport,
    ) -> bool:
        frames = tuple(f for _, f, _ in batch)
        body_len = BATCH_HEADER_MAX + sum(s for _, _, s in batch)
        estimate = transport.cost_upper_bound(body_len)
        self.ledger.add_usage(
            link.name, day, bytes_up=estimate, requests=1
        )  # charged before it leaves
        self.store.outbox.mark_attempt([i.id for i, _, _ in batch], now)
        try:
            delivery = await transport.send(Batch(self._rng.getrandbits(31), frames))
        except TransportError as exc:
            self._fail(link, now, day, exc, estimate, lr)
            return False
        return self._acknowledge(link, now, day, batch, delivery, estimate, lr)

    def _acknowledge(
        self,
        link: LinkConfig,
        now: datetime,
        day: date,
        batch: list[tuple[OutboxItem, Frame, int]],
        delivery: Delivery,
        estimate: int,
        lr: LinkReport,
    ) -> bool:
        acked_keys = [
            item.idempotency_key
            for item, _, _ in batch
            if delivery.acked.get(item.stream, 0) >= item.seq
        ]
        actual = delivery.bytes_up + delivery.bytes_down
        with self.store.transaction():
            self.ledger.add_usage(
                link.name,
                day,
                bytes_up=delivery.bytes_up - estimate,
                bytes_down=delivery.bytes_down,
                items=len(acked_keys),
            )
            self.store.outbox.mark_delivered(acked_keys, now, link.name)
        self.ledger.record_success(link.name, now)
        lr.items_sent += len(acked_keys)
        lr.bytes += actual
        if len(acked_keys) < len(batch):
            lr.error = f"hub acknowledged {len(acked_keys)} of {len(batch)} items"
            return False
        return True

    async def _fetch_inbound(
        self,
        link: LinkConfig,
        transport: Transport,
        now: datetime,
        day: date,
        report: SyncReport,
        lr: LinkReport,
    ) -> bool:
        used = self.ledger.usage(link.name, day).bytes_total
        left = budget_rules.allowance(link, used).for_priority(Priority.JOB_RESULT)
        cap = link.max_inbound_bytes or 1_000_000
        max_bytes = min(cap, left - transport.inbound_cost_upper_bound(0))
        if max_bytes <= 0:
            return False
        estimate = transport.inbound_cost_upper_bound(max_bytes)
        self.ledger.add_usage(link.name, day, bytes_up=estimate, requests=1 if estimate else 0)
        try:
            fetched = await transport.fetch_inbound(self.ledger.inbound_cursor(), max_bytes)
        except TransportError as exc:
            self._fail(link, now, day, exc, estimate, lr)
            return False
        self.ledger.add_usage(
            link.name, day, bytes_up=fetched.bytes_up - estimate, bytes_down=fetched.bytes_down
        )
        self.store.put_kv(KV_INBOUND_CHECKED, to_ms(now), now)
        report.inbound.extend(await self.router.dispatch(fetched.items, link.name, now))
        lr.bytes += fetched.bytes_up + fetched.bytes_down
        return True
