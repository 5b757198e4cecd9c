"""Password hashing (argon2id), the password rule, and generated first-run passwords.

argon2id with OWASP's minimum for argon2id (19 MiB, t=2, p=1): slow enough that a stolen
database is not a list of passwords, yet it keeps the box's peak memory low (the daemon, the
API and the planner share one process on a small ARM board; 64 MiB per hash would be the
process's largest allocation). Hashing runs in a worker thread so the control loop never waits.
"""

from __future__ import annotations

import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from appliance.api.messages import text

MAX_PASSWORD_LEN = 256
MIN_DISTINCT_CHARS = 5
# No 0/O, 1/l/I: the demo's generated password is read off a console and typed on a phone.
_ALPHABET = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"

_hasher = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
_dummy_hash: str | None = None


def _dummy() -> str:
    """Verified against when the user does not exist, so a wrong name costs the same time as a
    wrong password (no user enumeration by timing); made on first use, not at import."""
    global _dummy_hash
    if _dummy_hash is None:
        _dummy_hash = _hasher.hash(secrets.token_urlsafe(16))
    return _dummy_hash


class PasswordRuleError(ValueError):
    """The password breaks the rule; the message says which part."""


def check_rule(password: str, user: str, min_len: int) -> None:
    if len(password) < min_len:
        raise PasswordRuleError(text("user.password_short", n=min_len))
    if len(password) > MAX_PASSWORD_LEN:
        raise PasswordRuleError(text("user.password_long", n=MAX_PASSWORD_LEN))
    if user and user.lower() in password.lower():
        raise PasswordRuleError(text("user.password_name"))
    if len(set(password)) < MIN_DISTINCT_CHARS:
        raise PasswordRuleError(text("user.password_simple", n=MIN_DISTINCT_CHARS))


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(pw_hash: str | None, password: str) -> bool:
    """True when ``password`` matches; ``pw_hash`` None (unknown user) still costs a hash."""
    try:
        return _hasher.verify(pw_hash or _dummy(), password) and pw_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(pw_hash: str) -> bool:
    return _hasher.check_needs_rehash(pw_hash)


def generate_password(groups: int = 4, size: int = 5) -> str:
    """A strong password that survives being read aloud: 4 x 5 characters, ~115 bits."""
    return "-".join("".join(secrets.choice(_ALPHABET) for _ in range(size)) for _ in range(groups))
