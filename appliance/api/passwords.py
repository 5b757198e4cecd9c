"""Password hashing (argon2id), the password rule, and generated first-run passwords.

argon2id with the RFC 9106 low-memory profile (argon2-cffi's default: 64 MiB, t=3, p=4): slow
enough that a stolen database is not a list of passwords, fast enough (~0.1 s) for a box that
sees a handful of logins a day. Hashing runs in a worker thread so the control loop never waits.
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

_hasher = PasswordHasher()
# Verified against when the user does not exist, so a wrong name costs the same time as a
# wrong password (no user enumeration by timing).
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


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
        return _hasher.verify(pw_hash or _DUMMY_HASH, password) and pw_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(pw_hash: str) -> bool:
    return _hasher.check_needs_rehash(pw_hash)


def generate_password(groups: int = 4, size: int = 5) -> str:
    """A strong password that survives being read aloud: 4 x 5 characters, ~115 bits."""
    return "-".join("".join(secrets.choice(_ALPHABET) for _ in range(size)) for _ in range(groups))
