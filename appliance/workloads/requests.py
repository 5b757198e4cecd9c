"""A job submission as users write it (CLI, API): validated at the edge, then a ``Job``."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from appliance.config import SunboxConfig
from appliance.state import Job, JobKind, JobState


class JobRequestError(ValueError):
    """A submission mistake, as one line naming the field and the rule."""


class JobRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=64)
    cmd: str | None = Field(default=None, min_length=1, max_length=10_000)
    kind: Literal["critical", "deferrable", "sponge"] = "deferrable"
    energy_wh: float | None = Field(default=None, gt=0, le=1e7)
    duration_s: float | None = Field(default=None, gt=0, le=1e8)
    power_w: float | None = Field(default=None, gt=0, le=1e6)
    deadline: datetime | None = None
    value: float = Field(default=1.0, ge=0, le=1e6)
    owner: str = Field(default="", max_length=64)

    @field_validator("deadline")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("needs a UTC offset, e.g. 2025-06-01T18:00+03:00")
        return value

    @model_validator(mode="after")
    def _shape(self) -> JobRequest:
        if self.energy_wh is not None and self.duration_s is not None:
            raise ValueError(
                "give energy (--energy-wh) or duration and power (--duration --power-w), not both"
            )
        if self.duration_s is not None and self.power_w is None:
            raise ValueError("--duration needs --power-w (energy = duration × power)")
        if self.kind == "critical":
            if self.power_w is None:
                raise ValueError("a critical service needs its power (--power-w)")
            if (
                self.deadline is not None
                or self.energy_wh is not None
                or self.duration_s is not None
            ):
                raise ValueError("a critical service runs always: no energy, duration or deadline")
        elif self.kind == "deferrable":
            if self.energy_wh is None and self.duration_s is None:
                raise ValueError("a deferrable job needs --energy-wh or --duration with --power-w")
            if self.deadline is None:
                raise ValueError("a deferrable job needs a deadline (--deadline)")
        elif self.deadline is not None:
            raise ValueError("a sponge job has no deadline")
        return self

    @property
    def total_energy_wh(self) -> float | None:
        if self.energy_wh is not None:
            return self.energy_wh
        if self.duration_s is not None and self.power_w is not None:
            return self.power_w * self.duration_s / 3600.0
        return None

    def to_job(self, config: SunboxConfig, now: datetime, job_id: str | None = None) -> Job:
        range_w = config.compute.max_w - config.compute.idle_w
        power = self.power_w or config.compute.default_job_power_w or range_w
        return Job(
            id=job_id or new_job_id(),
            name=self.name,
            kind=JobKind(self.kind),
            power_w=float(power),
            energy_wh=self.total_energy_wh,
            deadline=self.deadline,
            value=self.value,
            cmd=self.cmd,
            submitted_at=now,
            state=JobState.PENDING,
            owner=self.owner,
        )


def new_job_id() -> str:
    return uuid.uuid4().hex[:10]


def parse_request(data: dict[str, object]) -> JobRequest:
    """Validate a submission; raises JobRequestError with one line."""
    try:
        return JobRequest.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err.get("loc", ())) or "job"
        msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        raise JobRequestError(
            f"{field}: {msg}" if field != "job" and err.get("loc") else msg
        ) from None
