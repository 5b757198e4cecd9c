"""Who may do what: four roles, each with the rights of the ones below it."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    VIEWER = "viewer"  # read everything
    OPERATOR = "operator"  # + submit and cancel jobs
    TECHNICIAN = "technician"  # + setpoints, safe mode, jobs with shell commands
    ADMIN = "admin"  # + users

    @property
    def rank(self) -> int:
        return _RANK[self]

    def allows(self, needed: Role) -> bool:
        return self.rank >= needed.rank


_RANK = {Role.VIEWER: 0, Role.OPERATOR: 1, Role.TECHNICIAN: 2, Role.ADMIN: 3}
