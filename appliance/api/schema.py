"""The API's tables: local users (argon2 hashes only) and their sessions (token hashes only)."""

from __future__ import annotations

import sqlite_utils

from appliance.store.core import register_migration

MIGRATION = "0100_api_users"


@register_migration(MIGRATION)
def _schema(db: sqlite_utils.Database) -> None:
    db.execute(
        "CREATE TABLE api_users (name TEXT PRIMARY KEY, role TEXT NOT NULL, pw_hash TEXT NOT NULL, "
        "created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL, last_login_ms INTEGER)"
    )
    # The session token itself is never stored: a copy of the database does not log anyone in.
    db.execute(
        "CREATE TABLE api_sessions (id_hash TEXT PRIMARY KEY, "
        "user TEXT NOT NULL REFERENCES api_users(name) ON DELETE CASCADE ON UPDATE CASCADE, "
        "csrf TEXT NOT NULL, created_ms INTEGER NOT NULL, expires_ms INTEGER NOT NULL, "
        "client TEXT NOT NULL DEFAULT '')"
    )
    db.execute("CREATE INDEX api_sessions_user ON api_sessions (user)")
