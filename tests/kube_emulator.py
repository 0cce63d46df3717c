"""A small Kubernetes API emulator on loopback HTTP, for driving the real ``kubernetes`` client.

It stores namespaced objects and serves what the deploy adapter uses, with the API server's
semantics where they matter to the adapter:

* ``GET`` and ``PATCH`` (``application/merge-patch+json``, RFC 7386, and
  ``application/json-patch+json``, RFC 6902) of one namespaced object,
  ``/apis/{group}/{version}/namespaces/{ns}/{plural}/{name}`` (``PUT`` too); strategic merge
  patch is refused with 415 (CRDs do not take it);
* ``metadata.resourceVersion`` increments on each write; a write whose resulting object carries a
  different resourceVersion than the stored one is refused with 409, as the API server does;
  ``metadata.generation`` increments when ``spec`` changes; ``status`` cannot be changed through
  the main resource (status subresource);
* ``POST`` to a namespaced collection, ``/apis/{group}/{version}/namespaces/{ns}/{plural}``,
  creates an object (409 AlreadyExists when the name is taken); with ``PUT`` (a replace that
  409s on a stale ``resourceVersion``) that is what Lease-based leader election needs
  (:meth:`KubeEmulator.serve_leases`);
* Status bodies for errors (404 naming the object or, for a type it does not serve, not; 403 in
  the RBAC authorizer's words; 409; 422);
* optional RBAC enforcement from Role rules, validators per resource (422 on a bad object), and
  injectable faults: the next N calls of a verb on a resource answer a given status, or a hook
  runs just before the next write (another actor racing the adapter).

Every request is recorded (method, path, RBAC verb, group, resource) so tests can check the Role.
"""

from __future__ import annotations

import copy
import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_PATH = re.compile(
    r"^/(?:api/(?P<core_version>v1)|apis/(?P<group>[^/]+)/(?P<version>[^/]+))"
    r"/namespaces/(?P<namespace>[^/]+)/(?P<plural>[^/]+)/(?P<name>[^/?]+)$"
)
_COLLECTION = re.compile(
    r"^/(?:api/(?P<core_version>v1)|apis/(?P<group>[^/]+)/(?P<version>[^/]+))"
    r"/namespaces/(?P<namespace>[^/]+)/(?P<plural>[^/]+)$"
)
_VERBS = {"GET": "get", "PATCH": "patch", "PUT": "update", "POST": "create"}
LEASES = ("coordination.k8s.io", "v1", "leases")


@dataclass(frozen=True)
class Call:
    """One request the emulator received."""

    method: str
    path: str
    verb: str
    group: str
    resource: str
    namespace: str
    name: str
    content_type: str | None
    body: Any
    status: int


@dataclass
class _Fault:
    verb: str
    resource: str
    status: int
    message: str
    times: int


@dataclass
class KubeEmulator:
    """Objects, faults and the request log; :meth:`start` serves them on 127.0.0.1."""

    #: (group, version, plural) triples served; others answer 404 as an unknown type would.
    served: set[tuple[str, str, str]] = field(default_factory=set)
    #: Role rules to enforce (None: allow everything).
    rbac_rules: list[dict[str, Any]] | None = None
    #: Per plural: called with each object about to be stored; raising ValueError gives 422.
    validators: dict[str, Callable[[dict[str, Any]], None]] = field(default_factory=dict)
    user: str = "system:serviceaccount:mlops-supervisor:mlops-supervisor"

    calls: list[Call] = field(default_factory=list)
    _objects: dict[tuple[str, str, str, str], dict[str, Any]] = field(default_factory=dict)
    _faults: list[_Fault] = field(default_factory=list)
    _before_write: list[Callable[[], None]] = field(default_factory=list)
    _rv: int = 100
    _lock: threading.RLock = field(default_factory=threading.RLock)
    _server: ThreadingHTTPServer | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> str:
        """Serve on a free loopback port; the base URL."""
        emulator = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                emulator._handle(self)

            def do_PATCH(self) -> None:
                emulator._handle(self)

            def do_PUT(self) -> None:
                emulator._handle(self)

            def do_POST(self) -> None:
                emulator._handle(self)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        ).start()
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    # ------------------------------------------------------------------ test controls

    def put(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Store ``obj`` as created (new resourceVersion, generation 1); returns the stored copy."""
        group, _, version = obj["apiVersion"].rpartition("/")
        plural = obj["kind"].lower() + "s"
        self.served.add((group, version, plural))
        meta = obj.setdefault("metadata", {})
        with self._lock:
            meta["resourceVersion"] = self._next_rv()
            meta.setdefault("generation", 1)
            meta.setdefault("uid", f"uid-{meta['name']}")
            key = (group, plural, meta["namespace"], meta["name"])
            self._objects[key] = copy.deepcopy(obj)
            return copy.deepcopy(obj)

    def get(self, group: str, plural: str, namespace: str, name: str) -> dict[str, Any]:
        with self._lock:
            return copy.deepcopy(self._objects[(group, plural, namespace, name)])

    def mutate(
        self,
        group: str,
        plural: str,
        namespace: str,
        name: str,
        fn: Callable[[dict[str, Any]], None],
    ) -> dict[str, Any]:
        """Another actor changes the object (status included): new resourceVersion."""
        with self._lock:
            obj = self._objects[(group, plural, namespace, name)]
            before = copy.deepcopy(obj.get("spec"))
            fn(obj)
            obj["metadata"]["resourceVersion"] = self._next_rv()
            if obj.get("spec") != before:
                obj["metadata"]["generation"] = obj["metadata"].get("generation", 1) + 1
            return copy.deepcopy(obj)

    def fail(
        self, verb: str, resource: str, status: int, message: str = "", times: int = 1
    ) -> None:
        """The next ``times`` calls of ``verb`` on ``resource`` (plural) answer ``status``."""
        with self._lock:
            self._faults.append(_Fault(verb, resource, status, message, times))

    def before_next_write(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` just before the next write is applied (a racing actor)."""
        with self._lock:
            self._before_write.append(fn)

    def serve_leases(self) -> None:
        """Serve ``coordination.k8s.io/v1`` leases (created by POST, none stored yet)."""
        with self._lock:
            self.served.add(LEASES)

    def writes(self) -> list[Call]:
        return [c for c in self.calls if c.verb != "get"]

    # ------------------------------------------------------------------ serving

    def _next_rv(self) -> str:
        self._rv += 1
        return str(self._rv)

    def _handle(self, req: BaseHTTPRequestHandler) -> None:
        path = req.path.split("?", 1)[0]
        length = int(req.headers.get("Content-Length") or 0)
        raw = req.rfile.read(length) if length else b""
        content_type = req.headers.get("Content-Type")
        body = json.loads(raw) if raw else None
        verb = _VERBS.get(req.command, req.command.lower())
        m = _COLLECTION.match(path) if req.command == "POST" else _PATH.match(path)
        if m is None:
            self._reply(
                req,
                Call(req.command, path, verb, "", "", "", "", content_type, body, 404),
                _status(404, "NotFound", "the server could not find the requested resource"),
            )
            return
        group = m["group"] or ""
        version = m["version"] or m["core_version"]
        ns, plural = m["namespace"], m["plural"]
        name = m["name"] if req.command != "POST" else (body or {}).get("metadata", {}).get("name")
        name = name or ""
        with self._lock:
            code, payload = self._serve(
                req.command, verb, group, version, ns, plural, name, content_type, body
            )
            call = Call(req.command, path, verb, group, plural, ns, name, content_type, body, code)
        self._reply(req, call, payload)

    def _reply(self, req: BaseHTTPRequestHandler, call: Call, payload: dict[str, Any]) -> None:
        with self._lock:
            self.calls.append(call)
        data = json.dumps(payload).encode()
        req.send_response(call.status)
        req.send_header("Content-Type", "application/json")
        req.send_header("Content-Length", str(len(data)))
        req.end_headers()
        req.wfile.write(data)

    def _serve(
        self,
        method: str,
        verb: str,
        group: str,
        version: str,
        ns: str,
        plural: str,
        name: str,
        content_type: str | None,
        body: Any,
    ) -> tuple[int, dict[str, Any]]:
        qualified = f"{plural}.{group}" if group else plural
        if self.rbac_rules is not None and not allowed(self.rbac_rules, verb, group, plural):
            group_text = f'in API group "{group}"' if group else 'in API group ""'
            return 403, _status(
                403,
                "Forbidden",
                f'{qualified} "{name}" is forbidden: User "{self.user}" cannot {verb} resource '
                f'"{plural}" {group_text} in the namespace "{ns}"',
                {"name": name, "group": group, "kind": plural},
            )
        for fault in self._faults:
            if fault.times > 0 and fault.verb == verb and fault.resource == plural:
                fault.times -= 1
                return fault.status, _status(
                    fault.status,
                    _REASONS.get(fault.status, "Unknown"),
                    fault.message or f"injected {fault.status}",
                    {"name": name, "group": group, "kind": plural},
                )
        if (group, version, plural) not in self.served:
            return 404, _status(404, "NotFound", "the server could not find the requested resource")
        key = (group, plural, ns, name)
        if method == "POST":
            return self._create(key, version, qualified, body)
        if key not in self._objects:
            return 404, _status(
                404,
                "NotFound",
                f'{qualified} "{name}" not found',
                {"name": name, "group": group, "kind": plural},
            )
        stored = self._objects[key]
        if method == "GET":
            return 200, copy.deepcopy(stored)
        if self._before_write:
            self._before_write.pop(0)()
            stored = self._objects[key]
        try:
            if method == "PUT":
                new = copy.deepcopy(body)
            elif content_type == "application/merge-patch+json":
                new = merge_patch(stored, body)
            elif content_type == "application/json-patch+json":
                new = json_patch(stored, body)
            else:
                return 415, _status(
                    415,
                    "UnsupportedMediaType",
                    f"the body of the request was in an unknown format: {content_type}",
                )
        except (KeyError, IndexError, ValueError, TypeError) as err:
            return 422, _status(422, "Invalid", f"the patch could not be applied: {err}")
        sent_rv = new.get("metadata", {}).get("resourceVersion")
        if sent_rv and sent_rv != stored["metadata"]["resourceVersion"]:
            return 409, _status(
                409,
                "Conflict",
                f'Operation cannot be fulfilled on {qualified} "{name}": the object has been '
                "modified; please apply your changes to the latest version and try again",
                {"name": name, "group": group, "kind": plural},
            )
        new["status"] = copy.deepcopy(stored.get("status"))
        if new["status"] is None:
            del new["status"]
        for immutable in ("name", "namespace", "uid", "generation"):
            new["metadata"][immutable] = stored["metadata"].get(immutable)
        validator = self.validators.get(plural)
        if validator is not None:
            try:
                validator(new)
            except ValueError as err:
                return 422, _status(422, "Invalid", f'{qualified} "{name}" is invalid: {err}')
        if new.get("spec") != stored.get("spec"):
            new["metadata"]["generation"] = stored["metadata"].get("generation", 1) + 1
        new["metadata"]["resourceVersion"] = self._next_rv()
        self._objects[key] = new
        return 200, copy.deepcopy(new)

    def _create(
        self, key: tuple[str, str, str, str], version: str, qualified: str, body: Any
    ) -> tuple[int, dict[str, Any]]:
        group, plural, ns, name = key
        details = {"name": name, "group": group, "kind": plural}
        if not isinstance(body, dict) or not name:
            return 422, _status(422, "Invalid", f"{qualified}: metadata.name: Required value")
        if key in self._objects:
            return 409, _status(
                409, "AlreadyExists", f'{qualified} "{name}" already exists', details
            )
        new = copy.deepcopy(body)
        meta = new.setdefault("metadata", {})
        if meta.get("resourceVersion"):
            return 422, _status(
                422, "Invalid", "metadata.resourceVersion: must be unset to create an object"
            )
        meta.update(namespace=ns, uid=f"uid-{name}", generation=1)
        meta["resourceVersion"] = self._next_rv()
        validator = self.validators.get(plural)
        if validator is not None:
            try:
                validator(new)
            except ValueError as err:
                return 422, _status(422, "Invalid", f'{qualified} "{name}" is invalid: {err}')
        self._objects[key] = new
        return 201, copy.deepcopy(new)


_REASONS = {
    403: "Forbidden",
    404: "NotFound",
    409: "Conflict",  # AlreadyExists for a create
    422: "Invalid",
    500: "InternalError",
    503: "ServiceUnavailable",
}


def _status(
    code: int, reason: str, message: str, details: dict[str, Any] | None = None
) -> dict[str, Any]:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "details": details or {},
        "code": code,
    }


def allowed(rules: list[dict[str, Any]], verb: str, group: str, resource: str) -> bool:
    """Whether Role ``rules`` allow ``verb`` on ``resource`` in API ``group``."""
    for rule in rules:
        if (
            (group in rule.get("apiGroups", []) or "*" in rule.get("apiGroups", []))
            and (resource in rule.get("resources", []) or "*" in rule.get("resources", []))
            and (verb in rule.get("verbs", []) or "*" in rule.get("verbs", []))
        ):
            return True
    return False


# --------------------------------------------------------------------------- patch formats


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def _unescape(token: str) -> str:
    return token.replace("~1", "/").replace("~0", "~")


def _walk(doc: Any, pointer: str) -> tuple[Any, str]:
    if not pointer.startswith("/"):
        raise ValueError(f"bad JSON pointer {pointer!r}")
    parts = [_unescape(p) for p in pointer[1:].split("/")]
    parent = doc
    for part in parts[:-1]:
        parent = parent[int(part)] if isinstance(parent, list) else parent[part]
    return parent, parts[-1]


def json_patch(doc: Any, ops: list[dict[str, Any]]) -> Any:
    """RFC 6902 JSON patch: add, remove, replace and test."""
    if not isinstance(ops, list):
        raise ValueError("a JSON patch is a list of operations")
    doc = copy.deepcopy(doc)
    for op in ops:
        parent, key = _walk(doc, op["path"])
        kind = op["op"]
        if kind == "test":
            current = parent[int(key)] if isinstance(parent, list) else parent[key]
            if current != op["value"]:
                raise ValueError(f"test failed at {op['path']!r}: {current!r} != {op['value']!r}")
        elif kind == "add":
            if isinstance(parent, list):
                index = len(parent) if key == "-" else int(key)
                if index > len(parent):
                    raise IndexError(f"add index {index} out of range at {op['path']!r}")
                parent.insert(index, copy.deepcopy(op["value"]))
            else:
                parent[key] = copy.deepcopy(op["value"])
        elif kind == "replace":
            if isinstance(parent, list):
                parent[int(key)] = copy.deepcopy(op["value"])
            else:
                if key not in parent:
                    raise KeyError(f"replace of missing {op['path']!r}")
                parent[key] = copy.deepcopy(op["value"])
        elif kind == "remove":
            if isinstance(parent, list):
                del parent[int(key)]
            else:
                del parent[key]
        else:
            raise ValueError(f"unsupported op {kind!r}")
    return doc
