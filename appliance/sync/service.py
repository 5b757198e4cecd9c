"""The sync loop: outbox -> link -> hub, and inbound items back, within bytes and watts.

One ``run_once`` looks at the links cheapest first; a link is brought up only if its window
is open, the energy plan affords its modem's watts, its budget has room and it is not backing
off after failures. It then drains the outbox by priority in batches, charging each batch's
worst-case cost to the day's budget before it leaves and the measured cost after, marking items
delivered only on the hub's acknowledgement (see ``courier``). Producers call the
``enqueue_*`` helpers; ``tick`` cuts telemetry blocks and daily summaries on its own.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable, Mapping
from datetime import date, datetime, timedelta
from typing import Any

from appliance.clock import Clock, floor_time
from appliance.config import LinkConfig, SunboxConfig
from appliance.state import Event, EventKind, Job, Severity
from appliance.store import Store, from_ms, to_ms
from appliance.store.outbox import OutboxItem, Priority
from appliance.sync.codec import block_from_store, encode_block, resolution_from
from appliance.sync.courier import Courier, LinkReport, PowerSwitchFn, SyncReport
from appliance.sync.inbound import InboundCallback, InboundRouter, json_object
from appliance.sync.ledger import SyncLedger
from appliance.sync.links import box_id, effective_links, rank_links
from appliance.sync.messages import (
    encode_daily_summary,
    encode_event,
    encode_job_result,
    encode_log,
)
from appliance.sync.summary import compute_daily_summary
from appliance.sync.transports.base import Transport

log = logging.getLogger(__name__)

STREAMS: dict[str, tuple[str, Priority]] = {
    # kind -> (stream, priority)
    "alarm": ("alarm", Priority.ALARM),
    "job_result": ("job", Priority.JOB_RESULT),
    "daily_summary": ("summary", Priority.DAILY_SUMMARY),
    "telemetry": ("telemetry", Priority.TELEMETRY),
    "event": ("log", Priority.LOG),
    "log": ("log", Priority.LOG),
}
_SEVERITY_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.ALARM: 2}
KV_TELEMETRY_CURSOR = "sync.telemetry_cursor"
KV_SUMMARY_DAY = "sync.summary_day"
CATCH_UP_BLOCKS = 12  # beyond this many missed periods, blocks grow to catch up faster
MAX_BLOCK_S = 6 * 3600.0
PENDING_WINDOW = 5000  # items looked at per pass (more than any budget lets out at once)

TransportFactory = Callable[[LinkConfig], Transport]
__all__ = ["LinkReport", "SyncReport", "SyncService", "build_for_hub", "build_transport"]


def build_transport(link: LinkConfig, box: str, token: str | None) -> Transport:
    """The transport a link's config names."""
    if link.transport == "http":
        from appliance.sync.transports.http import HttpTransport

        return HttpTransport(link, box, token)
    if link.transport == "mqtt":
        from appliance.sync.transports.mqtt import MqttTransport

        return MqttTransport(link, box, token)
    from appliance.sync.transports.sbd import SbdTransport

    return SbdTransport(link, box)


class SyncService:
    """Store-and-forward for one box. The daemon owns one and calls ``run`` (or ``run_once``)."""

    def __init__(
        self,
        config: SunboxConfig,
        store: Store,
        clock: Clock,
        transports: Mapping[str, Transport] | None = None,
        transport_factory: TransportFactory | None = None,
        power_switch: PowerSwitchFn | None = None,
        seed: int | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.clock = clock
        self.box = box_id(config)
        self.links = effective_links(config)
        self.zone = config.site.zone
        self.ledger = SyncLedger(store)
        self._transports: dict[str, Transport] = dict(transports or {})
        self._factory = transport_factory or (
            lambda lk: build_transport(lk, self.box, config.sync.box_token)
        )
        self._resolution = resolution_from(
            config.sync.telemetry_resolution, config.sync.telemetry_lossless
        )
        self.router = InboundRouter(store, self.ledger, config.sync.inbound_interval_s)
        self.courier = Courier(
            config, store, self.ledger, clock, self.router, self._resolution, power_switch, seed
        )
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._last_prune: datetime | None = None

    # ------------------------------------------------------------------ enqueue
    def _put(self, kind: str, payload: bytes, at: datetime) -> OutboxItem:
        stream, priority = STREAMS[kind]
        return self.store.outbox.put(stream, priority, kind, payload, at, self.box)

    def enqueue_event(self, event: Event) -> OutboxItem | None:
        """Alarms go to the alarm stream at once (and wake the loop); other events of at least
        ``log_min_severity`` go to the log stream; the rest stay local."""
        if event.severity == Severity.ALARM:
            item = self._put("alarm", encode_event(event), event.at)
            self._wake_up()
            return item
        if (
            _SEVERITY_RANK[event.severity]
            >= _SEVERITY_RANK[Severity(self.config.sync.log_min_severity)]
        ):
            return self._put("event", encode_event(event), event.at)
        return None

    def watch_events(self) -> None:
        """Enqueue every event the store records from now on (alarms leave immediately)."""

        def listener(event: Event) -> None:
            if event.kind == EventKind.SYNC:
                return  # our own events would feed back into the outbox
            try:
                self.enqueue_event(event)
            except Exception:  # a listener must never break the writer
                log.exception("could not enqueue event %s", event.message)

        self.store.events.subscribe(listener)

    def enqueue_job_result(self, job: Job) -> OutboxItem:
        return self._put("job_result", encode_job_result(job), job.finished_at or self.clock.now())

    def enqueue_daily_summary(self, day: date | None = None) -> OutboxItem:
        """Summary of a local day (default: yesterday)."""
        now = self.clock.now()
        day = day or (now.astimezone(self.zone).date() - timedelta(days=1))
        summary = compute_daily_summary(self.store, day, self.zone)
        return self._put("daily_summary", encode_daily_summary(summary), now)

    def enqueue_log(self, lines: list[str]) -> OutboxItem:
        return self._put("log", encode_log(lines), self.clock.now())

    def enqueue_telemetry(self, start: datetime, end: datetime) -> OutboxItem | None:
        """One compact block of all channels in [start, end) at ``telemetry_step_s``."""
        block = block_from_store(self.store, start, end, self.config.sync.telemetry_step_s)
        if block.points == 0:
            return None
        return self._put("telemetry", encode_block(block, self._resolution), end)

    # ------------------------------------------------------------------ inbound
    def on_inbound(self, kind: str, callback: InboundCallback) -> None:
        """Register ``callback(item)`` for inbound items of ``kind`` (config, job, weather...)."""
        self.router.on(kind, callback)

    def on_weather(self, callback: Callable[[str, bytes], Awaitable[None] | None]) -> None:
        """``callback(file_name, bytes)`` for weather forecast files (CSV) from the hub."""
        self.on_inbound("weather", lambda item: callback(item.name, item.payload))

    def on_job(self, callback: Callable[[dict[str, Any]], Awaitable[None] | None]) -> None:
        """``callback(spec)`` for job specs (JSON objects) from the hub."""
        self.on_inbound("job", lambda item: callback(json_object(item)))

    def on_config(self, callback: Callable[[dict[str, Any]], Awaitable[None] | None]) -> None:
        """``callback(patch)`` for config patches (JSON objects) from the hub."""
        self.on_inbound("config", lambda item: callback(json_object(item)))

    # ------------------------------------------------------------------ periodic work
    def tick(self, now: datetime) -> None:
        """Cut telemetry blocks that are due, the daily summary after local midnight, prune."""
        self._cut_telemetry(now)
        self._daily_summary(now)
        if self._last_prune is None or now - self._last_prune >= timedelta(hours=1):
            self._last_prune = now
            self.store.outbox.prune_delivered(
                now - timedelta(days=self.config.sync.delivered_keep_days)
            )

    def _cut_telemetry(self, now: datetime) -> None:
        period = self.config.sync.telemetry_interval_s
        edge = floor_time(now, period)
        got = self.store.get_kv(KV_TELEMETRY_CURSOR)
        cursor = from_ms(int(got[0])) if got else edge - timedelta(seconds=period)
        assert cursor is not None
        while cursor + timedelta(seconds=period) <= edge:
            behind_s = (edge - cursor).total_seconds()
            span_s = (
                period
                if behind_s <= CATCH_UP_BLOCKS * period
                else min(behind_s, max(period, MAX_BLOCK_S))
            )
            end = cursor + timedelta(seconds=span_s)
            with self.store.transaction():
                self.enqueue_telemetry(cursor, end)
                self.store.put_kv(KV_TELEMETRY_CURSOR, to_ms(end), now)
            cursor = end

    def _daily_summary(self, now: datetime) -> None:
        yesterday = now.astimezone(self.zone).date() - timedelta(days=1)
        got = self.store.get_kv(KV_SUMMARY_DAY)
        if got is None:
            self.store.put_kv(
                KV_SUMMARY_DAY, yesterday.isoformat(), now
            )  # first day: nothing to sum
            return
        last = date.fromisoformat(str(got[0]))
        day = last + timedelta(days=1)
        while day <= yesterday:
            with self.store.transaction():
                self.enqueue_daily_summary(day)
                self.store.put_kv(KV_SUMMARY_DAY, day.isoformat(), now)
            day += timedelta(days=1)

    # ------------------------------------------------------------------ delivery
    def _transport(self, link: LinkConfig) -> Transport:
        t = self._transports.get(link.name)
        if t is None:
            t = self._factory(link)
            self._transports[link.name] = t
        return t

    async def run_once(
        self, now: datetime | None = None, energy_allows_w: float = math.inf
    ) -> SyncReport:
        """One pass: periodic enqueues, then deliver over the best usable links, then inbound."""
        now = now or self.clock.now()
        self.tick(now)
        report = SyncReport(now)
        pending = self.store.outbox.pending(limit=PENDING_WINDOW)
        inbound_due = self.router.due(now)
        inbound_done = False
        for link in rank_links(self.links):
            if not pending and (inbound_done or not inbound_due):
                break
            why_not = self.courier.eligibility(
                link, now, energy_allows_w, pending, inbound_due and not inbound_done
            )
            if why_not is not None:
                self.ledger.record_decision(link.name, why_not, now)
                report.links.append(LinkReport(link.name, False, why_not))
                continue
            lr, got_inbound = await self.courier.session(
                link, self._transport(link), now, pending, inbound_due and not inbound_done, report
            )
            report.links.append(lr)
            inbound_done = inbound_done or got_inbound
            pending = self.store.outbox.pending(limit=PENDING_WINDOW)
        return report

    # ------------------------------------------------------------------ loop
    def _wake_up(self) -> None:
        if self._wake is not None and self._loop is not None and not self._loop.is_closed():
            try:
                self._loop.call_soon_threadsafe(self._wake.set)
            except RuntimeError:  # the loop stopped meanwhile; the next run picks the item up
                pass

    async def run(
        self, stop: asyncio.Event, energy_allows_w: Callable[[], float] | float = math.inf
    ) -> None:
        """Sync every ``interval_s`` (sooner when an alarm is enqueued) until ``stop`` is set."""
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        while not stop.is_set():
            watts = energy_allows_w() if callable(energy_allows_w) else energy_allows_w
            try:
                await self.run_once(self.clock.now(), watts)
            except Exception:  # the loop must outlive a bad pass; the next one retries
                log.exception("sync pass failed")
            self._wake.clear()
            sleeper = asyncio.ensure_future(self.clock.sleep(self.config.sync.interval_s))
            waiters = [
                sleeper,
                asyncio.ensure_future(self._wake.wait()),
                asyncio.ensure_future(stop.wait()),
            ]
            _, rest = await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            for task in rest:
                task.cancel()

    async def close(self) -> None:
        for t in self._transports.values():
            try:
                await t.close()
            except Exception:
                log.exception("closing transport")


def build_for_hub(
    config: SunboxConfig, store: Store, clock: Clock, hub_url: str, token: str | None = None
) -> SyncService:
    """A service that syncs to ``hub_url`` over a cellular HTTP link (``sunbox demo --hub URL``)."""
    from appliance.config import parse_config

    data = config.model_dump(mode="python")
    data["sync"]["hub_url"] = hub_url
    if token is not None:
        data["sync"]["box_token"] = token
    if not any(lk.get("url") == hub_url for lk in data.get("links", [])) and data.get("links"):
        data["links"] = [
            {"name": "hub", "kind": "cellular", "transport": "http", "url": hub_url},
            *data["links"],
        ]
    return SyncService(parse_config(data, "hub sync config"), store, clock)
