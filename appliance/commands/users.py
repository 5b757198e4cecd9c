"""``sunbox users``: the dashboard's local users, from the box's own console.

For the technician on site (balena's terminal, SSH): add a user, reset a forgotten admin
password, list who may do what. Passwords are typed twice at a terminal, read from stdin with
``--password-stdin`` (scripts), or generated with ``--generate`` (printed once). Only argon2
hashes are stored. A running dashboard sees changes within seconds (a changed or removed user's
sessions end).
"""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import Any

from appliance.api import schema  # noqa: F401  (the users tables exist before the store opens)
from appliance.api.passwords import PasswordRuleError, generate_password
from appliance.api.roles import Role
from appliance.api.users import UserError, UserStore
from appliance.clock import SystemClock
from appliance.commands.common import CommandError, config_from, open_store, print_json

ROLES = [r.value for r in Role]


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    users = sub.add_parser("users", help="dashboard users: add, passwd, role, remove, list",
                           parents=[common])
    usub = users.add_subparsers(dest="users_command", metavar="ACTION")
    users.set_defaults(func=lambda args: (users.print_help(), 2)[1])

    ls = usub.add_parser("list", help="list users and roles", parents=[common])
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=cmd_list)

    add = usub.add_parser("add", help="add a user", parents=[common])
    add.add_argument("name")
    add.add_argument("--role", choices=ROLES, default=Role.VIEWER.value)
    _password_options(add)
    add.set_defaults(func=cmd_add)

    pw = usub.add_parser("passwd", help="set a user's password (ends their sessions)",
                         parents=[common])
    pw.add_argument("name")
    _password_options(pw)
    pw.set_defaults(func=cmd_passwd)

    role = usub.add_parser("role", help="change a user's role", parents=[common])
    role.add_argument("name")
    role.add_argument("role", choices=ROLES)
    role.set_defaults(func=cmd_role)

    rm = usub.add_parser("remove", help="remove a user (not the last admin)", parents=[common])
    rm.add_argument("name")
    rm.set_defaults(func=cmd_remove)


def _password_options(p: argparse.ArgumentParser) -> None:
    how = p.add_mutually_exclusive_group()
    how.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    how.add_argument("--generate", action="store_true",
                     help="generate a strong password and print it once")


def _users(args: argparse.Namespace) -> UserStore:
    config = config_from(args)
    return UserStore(open_store(args), config.api.min_password_len)


def _password(args: argparse.Namespace) -> str:
    if args.generate:
        return generate_password()
    if args.password_stdin:
        line = sys.stdin.readline().rstrip("\r\n")
        if not line:
            raise CommandError("no password on stdin")
        return line
    if not sys.stdin.isatty():
        raise CommandError("no terminal to ask for a password: use --password-stdin or --generate")
    first = getpass.getpass("Password: ")
    if getpass.getpass("Repeat: ") != first:
        raise CommandError("the two passwords differ")
    return first


def _fail(exc: Exception) -> CommandError:
    return CommandError(str(exc))


def cmd_list(args: argparse.Namespace) -> int:
    users = _users(args).list()
    if args.json:
        print_json([{"name": u.name, "role": u.role.value, "created_at": u.created_at.isoformat(),
                     "last_login_at": u.last_login_at.isoformat() if u.last_login_at else None}
                    for u in users])
        return 0
    if not users:
        print("no users (the dashboard asks the first visitor to create the admin)")
        return 0
    for u in users:
        last = u.last_login_at.strftime("%Y-%m-%d %H:%M UTC") if u.last_login_at else "never"
        print(f"{u.name:<20} {u.role.value:<11} last login {last}")
    return 0


def cmd_add(args: argparse.Namespace) -> int:
    store = _users(args)
    password = _password(args)
    try:
        user = store.add(args.name, password, Role(args.role), SystemClock().now())
    except (UserError, PasswordRuleError) as exc:
        raise _fail(exc) from None
    print(f"added {user.name} ({user.role.value})")
    if args.generate:
        print(f"password: {password}  (shown once)")
    return 0


def cmd_passwd(args: argparse.Namespace) -> int:
    store = _users(args)
    if store.get(args.name) is None:
        raise CommandError(f"no user named '{args.name}'")
    password = _password(args)
    try:
        store.set_password(args.name, password, SystemClock().now())
    except (UserError, PasswordRuleError) as exc:
        raise _fail(exc) from None
    print(f"password of {args.name.lower()} changed; their sessions have ended")
    if args.generate:
        print(f"password: {password}  (shown once)")
    return 0


def cmd_role(args: argparse.Namespace) -> int:
    try:
        user = _users(args).set_role(args.name, Role(args.role), SystemClock().now())
    except UserError as exc:
        raise _fail(exc) from None
    print(f"{user.name} is now {user.role.value}")
    return 0


def cmd_remove(args: argparse.Namespace) -> int:
    try:
        _users(args).remove(args.name)
    except UserError as exc:
        raise _fail(exc) from None
    print(f"removed {args.name.lower()}")
    return 0
