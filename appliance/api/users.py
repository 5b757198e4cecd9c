"""Local users and their sessions, in the box's SQLite store.

The store is the truth shared with ``sunbox users`` (another process): a password changed or a
user removed from the CLI ends that user's sessions on the running dashboard within seconds
(see ``sessions.SessionManager``'s short cache).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import sqlite_utils

from appliance.api import schema
from appliance.api.messages import text
from appliance.api.passwords import check_rule, hash_password, needs_rehash, verify_password
from appliance.api.roles import Role
from appliance.store import Store, from_ms, to_ms

INSERT_USER = (
    "INSERT INTO api_users (name, role, pw_hash, created_ms, updated_ms) VALUES (?, ?, ?, ?, ?)"
)
NAME_RULE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,31}$")


UserErrorKind = Literal["name", "exists", "unknown", "last_admin", "setup_done"]


class UserError(ValueError):
    """A user-management request that cannot be done, with the reason for a person."""

    def __init__(self, message: str, kind: UserErrorKind) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class User:
    name: str
    role: Role
    created_at: datetime
    last_login_at: datetime | None = None


def normalise_name(name: str) -> str:
    name = name.strip().lower()
    if not NAME_RULE.match(name):
        raise UserError(text("user.name_rule"), "name")
    return name


class UserStore:
    def __init__(self, store: Store, min_password_len: int = 10) -> None:
        if schema.MIGRATION not in store.applied_migrations():
            raise RuntimeError(
                "users table missing: import appliance.api.schema before opening the Store"
            )
        self.store = store
        self.min_password_len = min_password_len

    # ------------------------------------------------------------------ reading
    def count(self) -> int:
        return int(self.store.query("SELECT count(*) AS n FROM api_users")[0]["n"])

    def get(self, name: str) -> User | None:
        rows = self.store.query("SELECT * FROM api_users WHERE name = ?", (name.strip().lower(),))
        return _user(rows[0]) if rows else None

    def list(self) -> list[User]:
        return [_user(r) for r in self.store.query("SELECT * FROM api_users ORDER BY name")]

    # ------------------------------------------------------------------ changing
    def add(self, name: str, password: str, role: Role, now: datetime) -> User:
        name = normalise_name(name)
        check_rule(password, name, self.min_password_len)
        pw_hash = hash_password(password)
        with self.store.transaction() as db:
            if db.execute("SELECT 1 FROM api_users WHERE name = ?", (name,)).fetchone():
                raise UserError(text("user.exists", name=name), "exists")
            db.execute(
                INSERT_USER,
                (name, str(role), pw_hash, to_ms(now), to_ms(now)),
            )
        return User(name, role, now)

    def add_first_admin(self, name: str, password: str, now: datetime) -> User:
        """The first-run admin, only while no user exists (checked inside the transaction)."""
        name = normalise_name(name)
        check_rule(password, name, self.min_password_len)
        pw_hash = hash_password(password)
        with self.store.transaction() as db:
            if db.execute("SELECT count(*) FROM api_users").fetchone()[0]:
                raise UserError(text("auth.setup_done"), "setup_done")
            db.execute(
                INSERT_USER,
                (name, str(Role.ADMIN), pw_hash, to_ms(now), to_ms(now)),
            )
        return User(name, Role.ADMIN, now)

    def set_password(self, name: str, password: str, now: datetime) -> None:
        """New password; every session of the user ends (a stolen session dies with the old one)."""
        user = self._require(name)
        check_rule(password, user.name, self.min_password_len)
        pw_hash = hash_password(password)
        with self.store.transaction() as db:
            db.execute(
                "UPDATE api_users SET pw_hash = ?, updated_ms = ? WHERE name = ?",
                (pw_hash, to_ms(now), user.name),
            )
            db.execute("DELETE FROM api_sessions WHERE user = ?", (user.name,))

    def set_role(self, name: str, role: Role, now: datetime) -> User:
        user = self._require(name)
        with self.store.transaction() as db:
            if user.role is Role.ADMIN and role is not Role.ADMIN:
                self._keep_an_admin(db, user.name)
            db.execute(
                "UPDATE api_users SET role = ?, updated_ms = ? WHERE name = ?",
                (str(role), to_ms(now), user.name),
            )
        return User(user.name, role, user.created_at, user.last_login_at)

    def remove(self, name: str) -> None:
        user = self._require(name)
        with self.store.transaction() as db:
            if user.role is Role.ADMIN:
                self._keep_an_admin(db, user.name)
            db.execute("DELETE FROM api_sessions WHERE user = ?", (user.name,))
            db.execute("DELETE FROM api_users WHERE name = ?", (user.name,))

    def verify(self, name: str, password: str, now: datetime) -> User | None:
        """The user when the password matches, else None (same cost either way)."""
        try:
            key = normalise_name(name)
        except UserError:
            key = ""
        rows = self.store.query("SELECT * FROM api_users WHERE name = ?", (key,)) if key else []
        pw_hash = rows[0]["pw_hash"] if rows else None
        if not verify_password(pw_hash, password) or not rows:
            return None
        with self.store.transaction() as db:
            if pw_hash is not None and needs_rehash(pw_hash):
                db.execute(
                    "UPDATE api_users SET pw_hash = ? WHERE name = ?",
                    (hash_password(password), key),
                )
            db.execute("UPDATE api_users SET last_login_ms = ? WHERE name = ?", (to_ms(now), key))
        return _user(rows[0])

    # ------------------------------------------------------------------ helpers
    def _require(self, name: str) -> User:
        user = self.get(name)
        if user is None:
            raise UserError(text("user.unknown", name=name), "unknown")
        return user

    @staticmethod
    def _keep_an_admin(db: sqlite_utils.Database, name: str) -> None:
        others = db.execute(
            "SELECT count(*) FROM api_users WHERE role = ? AND name != ?", (str(Role.ADMIN), name)
        ).fetchone()[0]
        if not others:
            raise UserError(text("user.last_admin", name=name), "last_admin")


def _user(row: dict[str, Any]) -> User:
    created = from_ms(row["created_ms"])
    assert created is not None
    return User(row["name"], Role(row["role"]), created, from_ms(row.get("last_login_ms")))
