"""A fake balena API on 127.0.0.1 speaking the OData dialect balena-sdk 17 sends.

It keeps real tables (application, device, release, device_tag, device_environment_variable,
device_config_variable, application_tag, device_type, ...) with foreign keys, answers pine's
``$filter`` (eq/ne/gt/ge/lt/le, and/or/not, in, lambda ``any``/``all``, navigation paths),
``$select``, ``$expand`` (nested options), ``$orderby``, ``$top``/``$skip``, natural-key ids
(``device(uuid='...')``), POST/PATCH/DELETE with unique constraints (409 "unique", which pine's
upsert relies on), plus the non-OData calls the SDK makes to provision a device
(``/actor/v1/whoami``, ``/api-key/v1/``, ``/device/register``). Unset foreign keys come back as
``{"__id": n}`` exactly like the real API, which the SDK's batch helpers read.

``simulate_devices`` plays the supervisors of the fleet: each online device installs the
release it should run and reports health tags through a callback.
"""

from __future__ import annotations

import itertools
import json
import re
import secrets
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit


class ODataError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Resource:
    fields: set[str]
    fks: dict[str, str] = field(default_factory=dict)
    reverse: dict[str, tuple[str, str]] = field(default_factory=dict)
    unique: list[tuple[str, ...]] = field(default_factory=list)
    defaults: dict[str, Any] = field(default_factory=dict)


def _var_resource(parent: str) -> Resource:
    return Resource(
        {"id", "name", "value", "created_at"}, {parent: parent}, unique=[(parent, "name")]
    )


def _tag_resource(parent: str) -> Resource:
    return Resource({"id", "tag_key", "value"}, {parent: parent}, unique=[(parent, "tag_key")])


SCHEMA: dict[str, Resource] = {
    "organization": Resource({"id", "handle", "name"}),
    "cpu_architecture": Resource({"id", "slug"}),
    "device_type": Resource(
        {"id", "slug", "name"},
        {"is_of__cpu_architecture": "cpu_architecture"},
        reverse={"device_type_alias": ("device_type_alias", "device_type")},
    ),
    "device_type_alias": Resource(
        {"id", "is_referenced_by__alias"}, {"device_type": "device_type"}
    ),
    "application": Resource(
        {"id", "app_name", "slug", "uuid", "should_track_latest_release", "is_host", "created_at"},
        {
            "organization": "organization",
            "is_for__device_type": "device_type",
            "should_be_running__release": "release",
        },
        reverse={
            "owns__device": ("device", "belongs_to__application"),
            "owns__release": ("release", "belongs_to__application"),
            "application_tag": ("application_tag", "application"),
            "application_config_variable": ("application_config_variable", "application"),
            "application_environment_variable": ("application_environment_variable", "application"),
        },
        unique=[("slug",)],
        defaults={"should_track_latest_release": True, "is_host": False},
    ),
    "release": Resource(
        {
            "id",
            "commit",
            "status",
            "created_at",
            "is_final",
            "is_passing_tests",
            "is_invalidated",
            "raw_version",
            "semver",
        },
        {"belongs_to__application": "application"},
        defaults={
            "status": "success",
            "is_final": True,
            "is_passing_tests": True,
            "is_invalidated": False,
        },
    ),
    "device": Resource(
        {
            "id",
            "uuid",
            "device_name",
            "is_online",
            "last_connectivity_event",
            "os_version",
            "supervisor_version",
            "api_heartbeat_state",
            "created_at",
            "note",
        },
        {
            "belongs_to__application": "application",
            "is_of__device_type": "device_type",
            "is_pinned_on__release": "release",
            "is_running__release": "release",
        },
        reverse={
            "device_tag": ("device_tag", "device"),
            "device_environment_variable": ("device_environment_variable", "device"),
            "device_config_variable": ("device_config_variable", "device"),
        },
        unique=[("uuid",)],
        defaults={
            "is_online": False,
            "api_heartbeat_state": "unknown",
            "note": None,
            "os_version": None,
            "supervisor_version": None,
            "last_connectivity_event": None,
        },
    ),
    "device_tag": _tag_resource("device"),
    "device_environment_variable": _var_resource("device"),
    "device_config_variable": _var_resource("device"),
    "application_tag": _tag_resource("application"),
    "application_config_variable": _var_resource("application"),
    "application_environment_variable": _var_resource("application"),
}

# Foreign keys the API computes instead of storing.
COMPUTED_FKS: dict[str, dict[str, str]] = {"device": {"should_be_running__release": "release"}}


def _now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


# --------------------------------------------------------------------------- $filter parsing

_TOKEN = re.compile(
    r"\s*(?:(?P<str>'(?:[^']|'')*')|(?P<dt>datetime'[^']*')|(?P<num>-?\d+(?:\.\d+)?)"
    r"|(?P<name>[A-Za-z_$@][A-Za-z0-9_$@]*)|(?P<punct>[(),:/]))"
)
_OPS = {"eq", "ne", "gt", "ge", "lt", "le"}


@dataclass
class Tok:
    kind: str
    value: Any


def tokenize(text: str) -> list[Tok]:
    tokens: list[Tok] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise ODataError(400, f"cannot parse $filter at {text[pos : pos + 20]!r}")
        pos = m.end()
        if m.group("str") is not None:
            tokens.append(Tok("lit", m.group("str")[1:-1].replace("''", "'")))
        elif m.group("dt") is not None:
            tokens.append(Tok("lit", m.group("dt")[9:-1]))
        elif m.group("num") is not None:
            num = m.group("num")
            tokens.append(Tok("lit", float(num) if "." in num else int(num)))
        elif m.group("name") is not None:
            name = m.group("name")
            if name in ("true", "false"):
                tokens.append(Tok("lit", name == "true"))
            elif name == "null":
                tokens.append(Tok("lit", None))
            else:
                tokens.append(Tok("name", name))
        else:
            tokens.append(Tok("p", m.group("punct")))
        while pos < len(text) and text[pos] == " ":
            pos += 1
    return tokens


class FilterParser:
    """Recursive descent over pine's output; builds a small AST of tuples."""

    def __init__(self, text: str) -> None:
        self.toks = tokenize(text)
        self.i = 0

    def peek(self, offset: int = 0) -> Tok | None:
        j = self.i + offset
        return self.toks[j] if j < len(self.toks) else None

    def take(self) -> Tok:
        tok = self.peek()
        if tok is None:
            raise ODataError(400, "unexpected end of $filter")
        self.i += 1
        return tok

    def at(self, punct: str) -> bool:
        tok = self.peek()
        return tok is not None and tok.kind == "p" and tok.value == punct

    def expect(self, punct: str) -> None:
        tok = self.take()
        if tok.kind != "p" or tok.value != punct:
            raise ODataError(400, f"expected {punct!r} in $filter, got {tok.value!r}")

    def is_word(self, word: str) -> bool:
        tok = self.peek()
        return tok is not None and tok.kind == "name" and tok.value == word

    def parse(self) -> Any:
        node = self.parse_or()
        if self.peek() is not None:
            raise ODataError(400, f"trailing tokens in $filter: {self.peek()}")
        return node

    def parse_or(self) -> Any:
        node = self.parse_and()
        while self.is_word("or"):
            self.take()
            node = ("or", node, self.parse_and())
        return node

    def parse_and(self) -> Any:
        node = self.parse_cmp()
        while self.is_word("and"):
            self.take()
            node = ("and", node, self.parse_cmp())
        return node

    def parse_cmp(self) -> Any:
        left = self.parse_unary()
        tok = self.peek()
        if tok is not None and tok.kind == "name" and tok.value in _OPS:
            self.take()
            return ("cmp", tok.value, left, self.parse_unary())
        if self.is_word("in"):
            self.take()
            self.expect("(")
            values = [self.parse_unary()]
            while self.at(","):
                self.take()
                values.append(self.parse_unary())
            self.expect(")")
            return ("in", left, values)
        return left

    def parse_unary(self) -> Any:
        tok = self.take()
        if tok.kind == "name" and tok.value == "not":
            return ("not", self.parse_unary())
        if tok.kind == "p" and tok.value == "(":
            node = self.parse_or()
            self.expect(")")
            return node
        if tok.kind == "lit":
            return ("lit", tok.value)
        if tok.kind == "name":
            nxt = self.peek()
            if nxt is not None and nxt.kind == "p" and nxt.value == "(":  # function call
                self.take()
                args = [self.parse_or()]
                while self.at(","):
                    self.take()
                    args.append(self.parse_or())
                self.expect(")")
                return ("fn", tok.value, args)
            path = [tok.value]
            while self.at("/"):
                self.take()
                seg = self.take()
                if seg.kind != "name":
                    raise ODataError(400, f"bad path segment {seg.value!r}")
                if seg.value in ("any", "all") and self.at("("):
                    self.take()
                    alias = self.take().value
                    self.expect(":")
                    expr = self.parse_or()
                    self.expect(")")
                    return ("lambda", seg.value, path, alias, expr)
                path.append(seg.value)
            return ("path", path)
        raise ODataError(400, f"unexpected {tok.value!r} in $filter")


# --------------------------------------------------------------------------- query options


def split_top(text: str, sep: str) -> list[str]:
    """Split at ``sep`` outside parentheses and quotes."""
    parts: list[str] = []
    depth = 0
    quoted = False
    cur = ""
    for ch in text:
        if ch == "'":
            quoted = not quoted
        elif not quoted and ch == "(":
            depth += 1
        elif not quoted and ch == ")":
            depth -= 1
        if ch == sep and depth == 0 and not quoted:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    if cur:
        parts.append(cur)
    return parts


@dataclass
class Options:
    select: list[str] | None = None
    filter: Any = None
    expand: dict[str, Options] = field(default_factory=dict)
    orderby: list[tuple[str, bool]] = field(default_factory=list)  # (path, descending)
    top: int | None = None
    skip: int = 0


def parse_options(pairs: list[tuple[str, str]]) -> Options:
    opts = Options()
    for key, value in pairs:
        if key == "$select":
            opts.select = (
                None if value.strip() == "*" else [v.strip() for v in value.split(",") if v.strip()]
            )
        elif key == "$filter":
            opts.filter = FilterParser(value).parse()
        elif key == "$expand":
            for item in split_top(value, ","):
                item = item.strip()
                if "(" in item:
                    name, inner = item.split("(", 1)
                    inner = inner[:-1]
                    sub = [p.partition("=") for p in split_top(inner, ";")]
                    opts.expand[name.strip()] = parse_options([(k, v) for k, _, v in sub])
                else:
                    opts.expand[item] = Options()
        elif key == "$orderby":
            for item in value.split(","):
                bits = item.strip().split()
                opts.orderby.append((bits[0], len(bits) > 1 and bits[1].lower() == "desc"))
        elif key == "$top":
            opts.top = int(value)
        elif key == "$skip":
            opts.skip = int(value)
        elif key.startswith("$"):
            raise ODataError(400, f"unsupported option {key}")
    return opts


# --------------------------------------------------------------------------- the cloud


class FakeBalenaCloud:
    """Tables + OData evaluation + an HTTP server on a free loopback port."""

    API_VERSION = "v7"

    def __init__(self, token: str = "fleet-manager-token") -> None:
        self.token = token
        self.tables: dict[str, dict[int, dict[str, Any]]] = {name: {} for name in SCHEMA}
        self._ids = itertools.count(1)
        self.provisioning_keys: dict[str, int] = {}
        self.device_keys: dict[str, int] = {}
        self.user = {
            "id": 900,
            "actorType": "user",
            "actorTypeId": 77,
            "username": "fleetops",
            "email": "fleetops@example.org",
        }
        self.log: list[tuple[str, str]] = []
        self.lock = threading.RLock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> FakeBalenaCloud:
        cloud = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # quiet
                return

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                status, payload = cloud.handle(
                    self.command, self.path, self.headers.get("Authorization", ""), raw
                )
                body = (
                    payload
                    if isinstance(payload, bytes)
                    else (
                        payload.encode()
                        if isinstance(payload, str)
                        else json.dumps(payload).encode()
                    )
                )
                ctype = "application/json" if not isinstance(payload, str) else "text/plain"
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PATCH = do_DELETE = do_PUT = _serve

        server = self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(
            target=lambda: server.serve_forever(poll_interval=0.05), daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}/"

    # ------------------------------------------------------------------ seeding
    def insert(self, resource: str, **values: Any) -> dict[str, Any]:
        with self.lock:
            spec = SCHEMA[resource]
            row: dict[str, Any] = {name: None for name in spec.fields | set(spec.fks)}
            row.update(spec.defaults)
            if "created_at" in spec.fields:
                row["created_at"] = _now_iso()
            row.update(values)
            row["id"] = values.get("id") or next(self._ids)
            self._check_unique(resource, row, None)
            self.tables[resource][row["id"]] = row
            return row

    def seed_fleet(
        self, slug: str = "sunbox/villages", device_type: str = "raspberrypi4-64"
    ) -> dict[str, Any]:
        """Organisation, architectures, device types and a fleet; returns the fleet row."""
        org = self.insert("organization", handle=slug.split("/")[0], name=slug.split("/")[0])
        archs = {
            s: self.insert("cpu_architecture", slug=s) for s in ("aarch64", "amd64", "armv7hf")
        }
        types = {}
        for dt_slug, arch, name in (
            ("raspberrypi4-64", "aarch64", "Raspberry Pi 4 (64bit)"),
            ("generic-amd64", "amd64", "Generic x86_64"),
            ("generic-aarch64", "aarch64", "Generic AARCH64"),
        ):
            types[dt_slug] = self.insert(
                "device_type", slug=dt_slug, name=name, is_of__cpu_architecture=archs[arch]["id"]
            )
            self.insert(
                "device_type_alias",
                device_type=types[dt_slug]["id"],
                is_referenced_by__alias=dt_slug,
            )
        return self.insert(
            "application",
            app_name=slug.split("/")[1],
            slug=slug,
            uuid=secrets.token_hex(16),
            organization=org["id"],
            is_for__device_type=types[device_type]["id"],
        )

    def add_release(
        self, app: dict[str, Any], commit: str, version: str, **extra: Any
    ) -> dict[str, Any]:
        return self.insert(
            "release",
            commit=commit,
            raw_version=version,
            semver=version,
            belongs_to__application=app["id"],
            **extra,
        )

    # ------------------------------------------------------------------ views for tests
    def rows(self, resource: str, **match: Any) -> list[dict[str, Any]]:
        with self.lock:
            return [
                dict(r)
                for r in self.tables[resource].values()
                if all(r.get(k) == v for k, v in match.items())
            ]

    def one(self, resource: str, **match: Any) -> dict[str, Any]:
        found = self.rows(resource, **match)
        assert len(found) == 1, f"{resource} {match}: {len(found)} rows"
        return found[0]

    def device_tags(self, uuid: str) -> dict[str, str]:
        dev = self.one("device", uuid=uuid)
        return {t["tag_key"]: t["value"] for t in self.rows("device_tag", device=dev["id"])}

    def device_vars(
        self, uuid: str, resource: str = "device_environment_variable"
    ) -> dict[str, str]:
        dev = self.one("device", uuid=uuid)
        return {v["name"]: v["value"] for v in self.rows(resource, device=dev["id"])}

    def should_run(self, device: dict[str, Any]) -> int | None:
        if device.get("is_pinned_on__release") is not None:
            return int(device["is_pinned_on__release"])
        app = self.tables["application"][device["belongs_to__application"]]
        rel = app.get("should_be_running__release")
        return None if rel is None else int(rel)

    def simulate_devices(
        self, report: Callable[[dict[str, Any], dict[str, Any] | None], dict[str, str] | None]
    ) -> None:
        """Each online device installs its target release and reports tags via ``report``."""
        with self.lock:
            for dev in list(self.tables["device"].values()):
                if not dev.get("is_online"):
                    continue
                target = self.should_run(dev)
                dev["is_running__release"] = target
                release = None if target is None else self.tables["release"].get(target)
                tags = report(dict(dev), None if release is None else dict(release))
                for key, value in (tags or {}).items():
                    existing = [
                        t
                        for t in self.tables["device_tag"].values()
                        if t["device"] == dev["id"] and t["tag_key"] == key
                    ]
                    if existing:
                        existing[0]["value"] = value
                    else:
                        self.insert("device_tag", device=dev["id"], tag_key=key, value=value)

    # ------------------------------------------------------------------ HTTP
    def handle(self, method: str, raw_path: str, auth: str, raw_body: bytes) -> tuple[int, Any]:
        parts = urlsplit(raw_path)
        path = parts.path
        with self.lock:
            self.log.append((method, unquote(raw_path)))
            try:
                body = json.loads(raw_body) if raw_body else None
            except json.JSONDecodeError:
                return 400, "body is not JSON"
            try:
                if path == "/device/register" and method == "POST":
                    return self._register(auth, body)
                if auth != f"Bearer {self.token}":
                    return 401, "Unauthorized"
                if path == "/actor/v1/whoami":
                    return 200, self.user
                if path.rstrip("/") == "/api-key/v1" and method == "POST":
                    return self._api_key(body)
                prefix = f"/{self.API_VERSION}/"
                if path.startswith(prefix):
                    return self._odata(method, path[len(prefix) :], parts.query, body)
                return 404, f"no route {method} {path}"
            except ODataError as exc:
                return exc.status, str(exc)

    def _api_key(self, body: Any) -> tuple[int, Any]:
        if not isinstance(body, dict) or body.get("actorType") != "application":
            return 400, "only application provisioning keys"
        app_id = body.get("actorTypeId")
        if app_id not in self.tables["application"]:
            return 404, "Application not found"
        key = secrets.token_hex(16)
        self.provisioning_keys[key] = int(app_id)
        return 200, key

    def _register(self, auth: str, body: Any) -> tuple[int, Any]:
        key = auth.removeprefix("Bearer ")
        app_id = self.provisioning_keys.get(key)
        if app_id is None:
            return 401, "Unauthorized"
        if not isinstance(body, dict) or body.get("application") != app_id:
            return 403, "provisioning key is for another application"
        uuid = str(body.get("uuid", ""))
        if not re.fullmatch(r"[0-9a-f]{32}|[0-9a-f]{62}", uuid):
            return 400, "invalid uuid"
        types = [
            t for t in self.tables["device_type"].values() if t["slug"] == body.get("device_type")
        ]
        if not types:
            return 400, "unknown device type"
        if any(d["uuid"] == uuid for d in self.tables["device"].values()):
            return 409, '"uuid" must be unique.'
        api_key = secrets.token_hex(16)
        dev = self.insert(
            "device",
            uuid=uuid,
            device_name=f"box-{uuid[:7]}",
            belongs_to__application=app_id,
            is_of__device_type=types[0]["id"],
        )
        self.device_keys[api_key] = dev["id"]
        return 201, {"id": dev["id"], "uuid": uuid, "api_key": api_key}

    # ------------------------------------------------------------------ OData
    def _odata(self, method: str, resource_part: str, query: str, body: Any) -> tuple[int, Any]:
        m = re.fullmatch(r"([a-z_]+)(?:\((.*)\))?", unquote(resource_part))
        if not m or m.group(1) not in SCHEMA:
            raise ODataError(404, f"unknown resource {resource_part!r}")
        resource, key = m.group(1), m.group(2)
        pairs = []
        for piece in query.split("&") if query else []:
            name, _, value = piece.partition("=")
            pairs.append((unquote(name), unquote(value)))
        opts = parse_options(pairs)
        if method == "GET":
            rows = self._select_rows(resource, key, opts)
            return 200, {"d": [self._serialize(resource, r, opts) for r in rows]}
        if method == "POST":
            return self._post(resource, body)
        if method == "PATCH":
            if not isinstance(body, dict):
                raise ODataError(400, "PATCH body must be an object")
            rows = self._select_rows(resource, key, opts)
            for row in rows:
                update = self._coerce_body(resource, body)
                self._check_unique(resource, {**row, **update}, row["id"])
                row.update(update)
            return 200, "OK"
        if method == "DELETE":
            for row in self._select_rows(resource, key, opts):
                del self.tables[resource][row["id"]]
            return 200, "OK"
        raise ODataError(405, f"method {method} not allowed")

    def _post(self, resource: str, body: Any) -> tuple[int, Any]:
        if not isinstance(body, dict):
            raise ODataError(400, "POST body must be an object")
        values = self._coerce_body(resource, body)
        for fk, target in SCHEMA[resource].fks.items():
            if values.get(fk) is not None and values[fk] not in self.tables[target]:
                raise ODataError(400, f"{fk} {values[fk]} does not exist")
        try:
            row = self.insert(resource, **values)
        except ODataError:
            raise
        return 201, self._serialize(resource, row, Options())

    def _coerce_body(self, resource: str, body: dict[str, Any]) -> dict[str, Any]:
        spec = SCHEMA[resource]
        out: dict[str, Any] = {}
        for name, value in body.items():
            if name == "id":
                continue
            if name in spec.fks:
                if isinstance(value, dict) and "__id" in value:
                    value = value["__id"]
                if value is not None and not isinstance(value, int):
                    raise ODataError(400, f"{name} must be an id")
                if value is not None and value not in self.tables[spec.fks[name]]:
                    raise ODataError(400, f"{name} {value} does not exist")
            elif name not in spec.fields:
                raise ODataError(400, f"unknown field {resource}.{name}")
            out[name] = value
        return out

    def _check_unique(self, resource: str, row: dict[str, Any], own_id: int | None) -> None:
        for cols in SCHEMA[resource].unique:
            for other in self.tables[resource].values():
                if other["id"] != own_id and all(other.get(c) == row.get(c) for c in cols):
                    names = " and ".join(f'"{c}"' for c in cols)
                    raise ODataError(409, f"{names} must be unique.")

    def _select_rows(self, resource: str, key: str | None, opts: Options) -> list[dict[str, Any]]:
        rows = list(self.tables[resource].values())
        if key:
            rows = [r for r in rows if self._matches_key(resource, r, key)]
        return self._apply(resource, rows, opts)

    def _apply(
        self, resource: str, rows: list[dict[str, Any]], opts: Options
    ) -> list[dict[str, Any]]:
        if opts.filter is not None:
            rows = [r for r in rows if self._truthy(self._eval(opts.filter, resource, r, {}))]
        for path, desc in reversed(opts.orderby):
            parts = path.split("/")

            def key(row: dict[str, Any], parts: list[str] = parts) -> tuple[int, Any]:
                return _sort_key(self._path_value(resource, row, parts, {}))

            rows.sort(key=key, reverse=desc)
        rows = rows[opts.skip :]
        if opts.top is not None:
            rows = rows[: opts.top]
        return rows

    def _matches_key(self, resource: str, row: dict[str, Any], key: str) -> bool:
        if re.fullmatch(r"\d+", key):
            return bool(row["id"] == int(key))
        for part in split_top(key, ","):
            name, _, literal = part.partition("=")
            toks = tokenize(literal)
            if len(toks) != 1 or toks[0].kind != "lit":
                raise ODataError(400, f"bad key {key!r}")
            if self._field(resource, row, name.strip()) != toks[0].value:
                return False
        return True

    # -- evaluation
    def _field(self, resource: str, row: dict[str, Any], name: str) -> Any:
        spec = SCHEMA[resource]
        if name in COMPUTED_FKS.get(resource, {}):
            return self.should_run(row)
        if name in spec.fields or name in spec.fks:
            return row.get(name)
        raise ODataError(400, f"unknown field {resource}.{name}")

    def _fk_target(self, resource: str, name: str) -> str | None:
        return SCHEMA[resource].fks.get(name) or COMPUTED_FKS.get(resource, {}).get(name)

    def _collection(
        self, resource: str, row: dict[str, Any], nav: str
    ) -> tuple[str, list[dict[str, Any]]]:
        target = self._fk_target(resource, nav)
        if target is not None:
            ref = self._field(resource, row, nav)
            found = self.tables[target].get(ref) if ref is not None else None
            return target, [found] if found is not None else []
        rev = SCHEMA[resource].reverse.get(nav)
        if rev is None:
            raise ODataError(400, f"unknown navigation {resource}.{nav}")
        child, fk = rev
        return child, [r for r in self.tables[child].values() if r.get(fk) == row["id"]]

    def _path_value(
        self, resource: str, row: dict[str, Any], path: list[str], env: dict[str, Any]
    ) -> Any:
        if path[0] in env:
            resource, row = env[path[0]]
            path = path[1:]
            if not path:
                return row["id"]
        for i, name in enumerate(path):
            if i == len(path) - 1:
                return self._field(resource, row, name)
            resource, rows = self._collection(resource, row, name)
            if not rows:
                return None
            row = rows[0]
        return None

    def _eval(self, node: Any, resource: str, row: dict[str, Any], env: dict[str, Any]) -> Any:
        kind = node[0]
        if kind == "lit":
            return node[1]
        if kind == "path":
            return self._path_value(resource, row, node[1], env)
        if kind == "and":
            return self._truthy(self._eval(node[1], resource, row, env)) and self._truthy(
                self._eval(node[2], resource, row, env)
            )
        if kind == "or":
            return self._truthy(self._eval(node[1], resource, row, env)) or self._truthy(
                self._eval(node[2], resource, row, env)
            )
        if kind == "not":
            return not self._truthy(self._eval(node[1], resource, row, env))
        if kind == "cmp":
            return _compare(
                node[1],
                self._eval(node[2], resource, row, env),
                self._eval(node[3], resource, row, env),
            )
        if kind == "in":
            value = self._eval(node[1], resource, row, env)
            return value in [self._eval(v, resource, row, env) for v in node[2]]
        if kind == "lambda":
            _, quant, path, alias, expr = node
            start_res, start_row = resource, row
            if path[0] in env:
                start_res, start_row = env[path[0]]
                path = path[1:]
            res, rows = start_res, [start_row]
            for nav in path:
                nxt: list[dict[str, Any]] = []
                child = res
                for r in rows:
                    child, found = self._collection(res, r, nav)
                    nxt.extend(found)
                res, rows = child, nxt
            results = (
                self._truthy(self._eval(expr, res, r, {**env, alias: (res, r)})) for r in rows
            )
            return any(results) if quant == "any" else all(results)
        if kind == "fn":
            name, args = node[1], [self._eval(a, resource, row, env) for a in node[2]]
            if name == "tolower":
                return None if args[0] is None else str(args[0]).lower()
            if name == "toupper":
                return None if args[0] is None else str(args[0]).upper()
            if name == "startswith":
                return args[0] is not None and str(args[0]).startswith(str(args[1]))
            if name == "endswith":
                return args[0] is not None and str(args[0]).endswith(str(args[1]))
            if name in ("contains", "substringof"):
                return args[0] is not None and str(args[1]) in str(args[0])
            raise ODataError(400, f"unsupported function {name}")
        raise ODataError(400, f"cannot evaluate {kind}")

    @staticmethod
    def _truthy(value: Any) -> bool:
        return bool(value)

    # -- output
    def _serialize(self, resource: str, row: dict[str, Any], opts: Options) -> dict[str, Any]:
        spec = SCHEMA[resource]
        computed = COMPUTED_FKS.get(resource, {})
        names = (
            opts.select
            if opts.select is not None
            else sorted(spec.fields | set(spec.fks) | set(computed))
        )
        out: dict[str, Any] = {}
        for name in names:
            if name in opts.expand:
                continue
            value = self._field(resource, row, name)
            if name in spec.fks or name in computed:
                out[name] = None if value is None else {"__id": value}
            else:
                out[name] = value
        for nav, sub in opts.expand.items():
            target, rows = self._collection(resource, row, nav)
            rows = self._apply(target, rows, sub)
            out[nav] = [self._serialize(target, r, sub) for r in rows]
        out["__metadata"] = {"uri": f"/resin/{resource}(@id)?@id={row['id']}"}
        return out


def _compare(op: str, left: Any, right: Any) -> bool:
    if op == "eq":
        return bool(left == right)
    if op == "ne":
        return bool(left != right)
    if left is None or right is None:
        return False
    try:
        return bool(
            {"gt": left > right, "ge": left >= right, "lt": left < right, "le": left <= right}[op]
        )
    except TypeError:
        return False


def _sort_key(value: Any) -> tuple[int, Any]:
    return (0, "") if value is None else (1, value)


def iter_log(cloud: FakeBalenaCloud, method: str) -> Iterator[str]:
    return (path for m, path in cloud.log if m == method)
