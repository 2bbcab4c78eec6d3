"""Synthetic OpenTelemetry traffic: a realistic shop, generated vectorized and streamed to a corpus.

Six services call each other (frontend -> api -> checkout/payments/catalog/search -> PostgreSQL and Redis client
spans), plus Kubernetes health probes on their own one-span traces. Each kind of request is a *template*: a small
tree of span nodes in depth-first order. A chunk of traces is generated as arrays: per template, a (traces x nodes)
matrix of span counts (optional nodes, repeated fan-out leaves, early exits) is expanded with ``np.repeat`` into
rows; durations are built bottom-up (a parent lasts its own time plus its children's, run one after another) and
start times top-down, level by level, so every child lies within its parent. No Python loop runs per span or per
trace: loops run over templates, nodes and tree levels only.

Values have the types Refinery's OTLP ingest gives them (husky ``otlp/traces_direct.go``, SEMANTICS.md 2.1):
``duration_ms`` float64, ``status_code`` int64 (OTel status: 0 unset, 1 ok, 2 error), ``error`` true only on spans
whose status is ERROR (absent otherwise), HTTP status codes int64, ``span.kind``/``type`` lowercase strings. Half the
services follow the current HTTP semantic conventions (``http.request.method``, ``http.response.status_code``,
``url.path``, ``server.address``), the others the old ones (``http.method``, ``http.status_code``, ``http.target``,
``net.peer.name``): Nectar's default alias ``http.status`` exists for exactly that mix.

Spans arrive in the order they end (an SDK exports a span when it ends), so a trace's root arrives last.
The same seed and span count give byte-identical Parquet files and manifest: each chunk draws from its own
``PCG64`` stream seeded by ``(seed, chunk number)``, and the chunk size is a constant.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from nectar.corpus.layout import PARENT_ID, SPAN_ID, TIMESTAMP, TRACE_ID, Manifest, column_map_from_schema
from nectar.errors import NectarError

GENERATOR = "nectar-synth/1"
CHUNK_SPANS = 250_000  # spans per part file; a constant, so the output depends only on (seed, spans, window)
DEFAULT_WINDOW = 3600.0
DEFAULT_START = datetime(2026, 1, 5, 9, 0, 0, tzinfo=UTC)  # fixed: no wall-clock time in the output

Batch = tuple[pa.Table, dict[str, list[str]]]

# --- The shop: services, request templates, outcome mix ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Service:
    """A service: its Kubernetes namespace, version, HTTP semantic conventions and how it sets OTel status."""

    namespace: str
    version: str
    new_conv: bool  # http.request.method / http.response.status_code (else http.method / http.status_code)
    pods: int
    pod_hash: str
    ok_status: int = 0  # OTel status on successful server spans: 0 UNSET (most SDKs), 1 OK (some set it)


SERVICES: dict[str, Service] = {
    "frontend": Service("web", "2.31.0", True, 4, "7d9f8c6b5"),
    "api": Service("api", "1.88.3", False, 6, "5c8d7f9b4"),
    "checkout": Service("commerce", "3.4.1", True, 3, "6b7c9d8f2"),
    "payments": Service("commerce", "0.19.7", False, 2, "84f6d9c7b", ok_status=1),
    "catalog": Service("catalog", "5.0.2", True, 3, "9f5b7c6d4"),
    "search": Service("catalog", "1.2.0", False, 2, "c7d8b9f5a"),
}
TIERS: tuple[tuple[str, float, float], ...] = (  # (user.tier, share of requests, factor on the 429 rate)
    ("free", 0.70, 1.8),
    ("pro", 0.25, 0.4),
    ("enterprise", 0.05, 0.1),
)
REGIONS: tuple[tuple[str, float], ...] = (
    ("us-east-1", 0.50),
    ("us-west-2", 0.25),
    ("eu-west-1", 0.20),
    ("ap-southeast-2", 0.05),
)
HEALTH_SHARE = 0.40  # of all traces: Kubernetes probes, one span each
EARLY_EXIT = (400, 401, 403, 429)  # the api answers these itself: nothing below it is called


@dataclass(frozen=True, slots=True)
class Datastore:
    system: str  # db.system
    operation: str
    statement: str
    host: str
    database: str | None = None
    table: str | None = None


@dataclass(frozen=True, slots=True)
class Node:
    """One span of a request template. ``repeat`` (lo, hi) makes a leaf appear lo..hi times (fan-out)."""

    service: str
    name: str
    kind: str  # span.kind as husky writes it: server, client, internal
    parent: int
    depth: int
    self_ms: float  # median own time
    sigma: float  # lognormal spread of own time
    method: str | None = None
    route: str | None = None
    peer: str | None = None
    datastore: Datastore | None = None
    p: float = 1.0  # chance the span is there (e.g. a cache miss)
    repeat: tuple[int, int] = (1, 1)
    health: bool = False


@dataclass(frozen=True, slots=True)
class Template:
    """A kind of request: a span tree in depth-first order, how often it comes, and its HTTP outcome mix."""

    name: str
    weight: float
    nodes: tuple[Node, ...]
    ok_code: int = 200
    outcomes: tuple[tuple[int, float], ...] = ()
    gate_depth: int = 2  # early exits (EARLY_EXIT) drop every span deeper than this (the api server span)
    slow_rate: float = 0.003  # share of successful requests with a multi-second datastore call

    def __post_init__(self) -> None:
        for i, n in enumerate(self.nodes):
            assert n.parent < i, "nodes must be in depth-first order"
            assert n.repeat == (1, 1) or all(m.parent != i for m in self.nodes), "only leaves repeat"

    @property
    def mean_spans(self) -> float:
        present = [1.0] * len(self.nodes)
        total = 0.0
        for i, n in enumerate(self.nodes):
            own = n.p if n.repeat == (1, 1) else (n.repeat[0] + n.repeat[1]) / 2
            present[i] = own * (present[n.parent] if n.parent >= 0 else 1.0)
            total += present[i]
        return total


class _Tree:
    """Builds a template's nodes in depth-first order (add a node's whole subtree before its next sibling)."""

    def __init__(self) -> None:
        self.nodes: list[Node] = []

    def add(self, parent: int, service: str, name: str, kind: str, self_ms: float, sigma: float, **kw: object) -> int:
        depth = self.nodes[parent].depth + 1 if parent >= 0 else 0
        self.nodes.append(Node(service, name, kind, parent, depth, self_ms, sigma, **kw))  # type: ignore[arg-type]
        return len(self.nodes) - 1

    def server(self, parent: int, service: str, method: str, route: str, self_ms: float = 1.5) -> int:
        return self.add(parent, service, f"{method} {route}", "server", self_ms, 0.5, method=method, route=route)

    def call(self, parent: int, to: str, method: str, route: str, self_ms: float = 1.5, p: float = 1.0) -> int:
        """An HTTP call from the parent's service to ``to``: a client span and the server span under it."""
        caller = self.nodes[parent].service
        name = method if SERVICES[caller].new_conv else f"HTTP {method}"
        peer = f"{to}.{SERVICES[to].namespace}.svc.cluster.local"
        client = self.add(parent, caller, name, "client", 0.4, 0.3, method=method, peer=peer, p=p)
        return self.server(client, to, method, route, self_ms)

    def pg(self, parent: int, op: str, table: str, sql: str, p: float = 1.0, repeat: tuple[int, int] = (1, 1)) -> int:
        ds = Datastore("postgresql", op, sql, "postgres-primary.data.svc.cluster.local", "shop", table)
        ms = {"SELECT": 1.2, "INSERT": 2.0, "UPDATE": 2.5}[op]
        return self.add(parent, self.nodes[parent].service, f"{op} shop.{table}", "client", ms, 0.8, datastore=ds,
                        p=p, repeat=repeat)  # fmt: skip

    def redis(self, parent: int, op: str, key: str, p: float = 1.0, repeat: tuple[int, int] = (1, 1)) -> int:
        ds = Datastore("redis", op, f"{op} {key}", "redis-master.data.svc.cluster.local")
        return self.add(parent, self.nodes[parent].service, op, "client", 0.2, 0.5, datastore=ds, p=p, repeat=repeat)


def _outcomes(**changes: float) -> tuple[tuple[int, float], ...]:
    """The usual error mix (``c404=0.03`` changes one rate): rare 5xx, some 4xx, 429 scaled by user tier."""
    base = {404: 0.004, 400: 0.002, 401: 0.002, 403: 0.001, 409: 0.0, 429: 0.006}
    base |= {500: 0.0025, 502: 0.0008, 503: 0.0012, 504: 0.0008}
    base |= {int(k[1:]): v for k, v in changes.items()}
    return tuple((c, p) for c, p in base.items() if p > 0)


def _request_templates() -> list[Template]:
    out: list[Template] = []

    b = _Tree()  # browse the catalogue
    api = b.call(b.server(-1, "frontend", "GET", "/products", 3.0), "api", "GET", "/api/products")
    cat = b.call(api, "catalog", "GET", "/catalog/products")
    b.redis(cat, "GET", "products:list:?")
    b.pg(cat, "SELECT", "products", "SELECT id, name, price FROM products ORDER BY rank LIMIT $1", p=0.3)
    out.append(Template("browse", 30, tuple(b.nodes), outcomes=_outcomes()))

    b = _Tree()  # one product page
    api = b.call(b.server(-1, "frontend", "GET", "/products/{id}", 3.0), "api", "GET", "/api/products/{id}")
    b.redis(api, "GET", "session:?")
    cat = b.call(api, "catalog", "GET", "/catalog/products/{id}")
    b.redis(cat, "GET", "product:?")
    b.pg(cat, "SELECT", "products", "SELECT * FROM products WHERE id = $1", p=0.25)
    out.append(Template("product", 26, tuple(b.nodes), outcomes=_outcomes(c404=0.03)))

    b = _Tree()  # search
    api = b.call(b.server(-1, "frontend", "GET", "/search", 3.0), "api", "GET", "/api/search")
    srch = b.call(api, "search", "POST", "/search/query", 4.0)
    b.redis(srch, "GET", "search:q:?", p=0.6)
    b.pg(srch, "SELECT", "search_index", "SELECT id FROM search_index WHERE doc @@ plainto_tsquery($1) LIMIT 50")
    b.add(srch, "search", "rank.results", "internal", 6.0, 0.6)
    out.append(Template("search", 14, tuple(b.nodes), outcomes=_outcomes()))

    b = _Tree()  # add to cart
    api = b.call(b.server(-1, "frontend", "POST", "/cart/items", 3.0), "api", "POST", "/api/cart/items")
    co = b.call(api, "checkout", "POST", "/checkout/cart/items")
    b.redis(co, "HGET", "cart:?")
    b.pg(co, "SELECT", "inventory", "SELECT available FROM inventory WHERE product_id = $1")
    b.redis(co, "HSET", "cart:?")
    out.append(Template("cart", 12, tuple(b.nodes), ok_code=201, outcomes=_outcomes(c400=0.006)))

    b = _Tree()  # place an order
    api = b.call(b.server(-1, "frontend", "POST", "/checkout", 4.0), "api", "POST", "/api/checkout")
    co = b.call(api, "checkout", "POST", "/checkout/orders", 2.5)
    b.redis(co, "HGETALL", "cart:?")
    cat = b.call(co, "catalog", "GET", "/catalog/inventory/{id}")
    b.pg(cat, "SELECT", "inventory", "SELECT available FROM inventory WHERE product_id = ANY($1)")
    pay = b.call(co, "payments", "POST", "/payments/charges", 2.0)
    b.add(pay, "payments", "fraud.score", "internal", 12.0, 0.6)
    b.add(pay, "payments", "HTTP POST", "client", 180.0, 0.35, method="POST", peer="api.stripe.com")
    b.pg(pay, "INSERT", "payments", "INSERT INTO payments (order_id, amount, status) VALUES ($1, $2, $3)")
    b.pg(co, "INSERT", "orders", "INSERT INTO orders (user_id, total) VALUES ($1, $2) RETURNING id")
    b.pg(co, "UPDATE", "inventory", "UPDATE inventory SET available = available - $1 WHERE product_id = $2")
    b.redis(co, "DEL", "cart:?")
    out.append(Template("checkout", 6, tuple(b.nodes), ok_code=201, outcomes=_outcomes(c400=0.01, c409=0.004)))

    b = _Tree()  # log in
    api = b.call(b.server(-1, "frontend", "POST", "/login", 3.0), "api", "POST", "/api/auth/login")
    b.pg(api, "SELECT", "users", "SELECT id, password_hash FROM users WHERE email = $1")
    b.add(api, "api", "bcrypt.verify", "internal", 45.0, 0.2)
    b.redis(api, "SET", "session:?")
    out.append(Template("login", 6, tuple(b.nodes), outcomes=_outcomes(c401=0.06), gate_depth=99))

    b = _Tree()  # recommendations: an N+1 fan-out of hundreds of spans
    api = b.call(b.server(-1, "frontend", "GET", "/recommendations", 3.0), "api", "GET", "/api/recommendations")
    cat = b.call(api, "catalog", "POST", "/catalog/products/batch", 2.0)
    b.redis(cat, "GET", "product:?", repeat=(100, 400))
    b.pg(cat, "SELECT", "products", "SELECT * FROM products WHERE id = $1", repeat=(50, 250))
    out.append(Template("fanout", 0.25, tuple(b.nodes), outcomes=_outcomes()))
    return out


def _health_templates(request_weight: float) -> list[Template]:
    """Kubernetes liveness and readiness probes of every service, each on its own one-span trace."""
    out = []
    weight = request_weight * HEALTH_SHARE / (1 - HEALTH_SHARE) / (2 * len(SERVICES))
    for svc in sorted(SERVICES):
        for route, fail in (("/healthz", (500, 0.0004)), ("/readyz", (503, 0.003))):
            node = Node(svc, f"GET {route}", "server", -1, 0, 0.3, 0.4, method="GET", route=route, health=True)
            out.append(Template(f"health:{svc}{route}", weight, (node,), outcomes=(fail,), gate_depth=99, slow_rate=0))
    return out


_REQUESTS = _request_templates()
TEMPLATES: tuple[Template, ...] = (*_REQUESTS, *_health_templates(sum(t.weight for t in _REQUESTS)))


def health_templates() -> list[int]:
    """Indices of the health-probe templates in :data:`TEMPLATES`."""
    return [i for i, t in enumerate(TEMPLATES) if t.nodes[0].health]


@dataclass(slots=True)
class _Block:
    """Traces of one template: per-trace draws and the span-count matrix."""

    template: int
    counts: np.ndarray  # (traces, nodes) int64
    code: np.ndarray  # HTTP status of the request, per trace
    tier: np.ndarray
    region: np.ndarray
    slow: np.ndarray  # bool: a datastore call takes seconds
    db_error: np.ndarray  # bool: the last datastore call fails

    def take(self, mask: np.ndarray) -> _Block:
        arrays = (self.counts, self.code, self.tier, self.region, self.slow, self.db_error)
        return _Block(self.template, *(a[mask] for a in arrays))


class _NodeTable:
    """Every node of every template, indexed by global node id, as arrays and per-field static values."""

    def __init__(self, templates: tuple[Template, ...]) -> None:
        self.offsets = [int(o) for o in np.cumsum([0] + [len(t.nodes) for t in templates[:-1]])]
        self.nodes = [n for t in templates for n in t.nodes]
        self.median_ms = np.array([n.self_ms for n in self.nodes])
        self.sigma = np.array([n.sigma for n in self.nodes])
        self.depth = np.array([n.depth for n in self.nodes], dtype=np.int64)
        self.is_ds = np.array([n.datastore is not None for n in self.nodes])
        self.http = np.array([n.method is not None for n in self.nodes])
        self.client = np.array([n.kind == "client" for n in self.nodes])
        self.server = np.array([n.kind == "server" for n in self.nodes])
        self.has_id = np.array([n.route is not None and "{id}" in n.route for n in self.nodes])
        self.user_attrs = np.array([n.kind == "server" and n.service in ("frontend", "api") for n in self.nodes])
        self.ok_status = np.array([SERVICES[n.service].ok_status for n in self.nodes], dtype=np.int64)
        self.new_conv = np.array([SERVICES[n.service].new_conv for n in self.nodes])
        self.health = np.array([n.health for n in self.nodes])
        names = sorted(SERVICES)
        self.service_index = np.array([names.index(n.service) for n in self.nodes], dtype=np.int64)
        self.pod_count = np.array([SERVICES[s].pods for s in names], dtype=np.int64)
        self.pod_offset = np.concatenate([[0], np.cumsum(self.pod_count)[:-1]])
        self.pod_names = [f"{s}-{SERVICES[s].pod_hash}-{i}" for s in names for i in range(SERVICES[s].pods)]
        self.static = _static_fields(self.nodes)


def _static_fields(nodes: list[Node]) -> dict[str, list[str | None]]:
    """Per field, its string value on each node (None: the node has no such field)."""
    out: dict[str, list[str | None]] = {}

    def put(fname: str, i: int, value: str | None) -> None:
        if value is not None:
            out.setdefault(fname, [None] * len(nodes))[i] = value

    for i, n in enumerate(nodes):
        svc = SERVICES[n.service]
        put("service.name", i, n.service)
        put("service.version", i, svc.version)
        put("k8s.namespace.name", i, svc.namespace)
        put("cloud.provider", i, "aws")
        put("name", i, n.name)
        put("span.kind", i, n.kind)
        put("type", i, n.kind)
        put("http.request.method" if svc.new_conv else "http.method", i, n.method)
        put("http.route", i, n.route if n.kind == "server" else None)
        if n.kind == "server" and n.route is not None:
            put("url.path" if svc.new_conv else "http.target", i, n.route.split("{id}")[0])
        peer = n.peer or (n.datastore.host if n.datastore else None)
        put("server.address" if svc.new_conv else "net.peer.name", i, peer)
        if n.kind == "server" and n.route is not None:
            ua = "kube-probe/1.31" if n.health else ("Mozilla/5.0" if n.service == "frontend" else None)
            put("user_agent.original" if svc.new_conv else "http.user_agent", i, ua)
        if n.datastore is not None:
            ds = n.datastore
            put("db.system", i, ds.system)
            put("db.operation", i, ds.operation)
            put("db.statement", i, ds.statement)
            put("db.name", i, ds.database)
            put("db.sql.table", i, ds.table)
    return out


def _string_column(values: list[str | None], index: np.ndarray) -> pa.Array:
    """A string column: ``values`` (one per global node) looked up by each row's node id, as Arrow ``take``."""
    vocab = sorted({v for v in values if v is not None})
    pos = {v: i for i, v in enumerate(vocab)}
    codes = np.array([pos[v] if v is not None else -1 for v in values], dtype=np.int64)[index]
    return pc.take(pa.array(vocab, pa.string()), pa.array(codes, mask=codes < 0))


def _hex_ids(rng: np.random.Generator, n: int, nbytes: int) -> pa.Array:
    """``n`` random lowercase hex ids of ``nbytes`` bytes, built straight into an Arrow string buffer."""
    raw = rng.integers(0, 256, size=(n, nbytes), dtype=np.uint8)
    table = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
    chars = np.empty((n, nbytes * 2), dtype=np.uint8)
    chars[:, 0::2] = table[raw >> 4]
    chars[:, 1::2] = table[raw & 15]
    width = nbytes * 2
    offsets = np.arange(0, (n + 1) * width, width, dtype=np.int32)
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets.tobytes()), pa.py_buffer(chars.tobytes()))


def _draw_block(rng: np.random.Generator, ti: int, t: Template, k: int) -> _Block:
    """Per-trace draws for ``k`` traces of template ``t``: user tier, region, outcome, slowness, span counts."""
    tier = rng.choice(len(TIERS), size=k, p=[w for _, w, _ in TIERS])
    region = rng.choice(len(REGIONS), size=k, p=[w for _, w in REGIONS])
    u = rng.random(k)
    code = np.full(k, t.ok_code, dtype=np.int64)
    lo = np.zeros(k)
    rate_limit = np.array([f for _, _, f in TIERS])[tier]
    for c, p in t.outcomes:
        hi = lo + (p * rate_limit if c == 429 else p)
        code[(u >= lo) & (u < hi)] = c
        lo = hi
    early_exit = np.isin(code, EARLY_EXIT)
    slow = (code == 504) | ((rng.random(k) < t.slow_rate) & (code < 400))
    db_error = (code == 504) | ((code == 500) & (rng.random(k) < 0.5))
    n = len(t.nodes)
    counts = np.ones((k, n), dtype=np.int64)
    for j, node in enumerate(t.nodes):
        if node.repeat != (1, 1):
            counts[:, j] = rng.integers(node.repeat[0], node.repeat[1] + 1, size=k)
        elif node.p < 1.0:
            counts[:, j] = rng.random(k) < node.p
        if node.depth > t.gate_depth:
            counts[early_exit, j] = 0
        if node.parent >= 0:
            counts[:, j] *= counts[:, node.parent] > 0
    return _Block(ti, counts, code, tier, region, slow, db_error)


def _chunk_blocks(rng: np.random.Generator, spans: int, health: list[int]) -> list[_Block]:
    """Whole traces adding up to exactly ``spans`` spans (the remainder is filled with one-span health checks)."""
    weights = np.array([t.weight for t in TEMPLATES])
    probs = weights / weights.sum()
    mean = float(probs @ np.array([t.mean_spans for t in TEMPLATES]))
    slots = int(spans / mean * 1.2) + 16
    choice = rng.choice(len(TEMPLATES), size=slots, p=probs)
    blocks: list[_Block] = []
    per_slot = np.zeros(slots, dtype=np.int64)
    where: list[np.ndarray] = []
    for ti, t in enumerate(TEMPLATES):
        idx = np.nonzero(choice == ti)[0]
        where.append(idx)
        blocks.append(_draw_block(rng, ti, t, len(idx)))
        per_slot[idx] = blocks[-1].counts.sum(axis=1)
    keep = np.cumsum(per_slot) <= spans
    blocks = [b.take(keep[idx]) for b, idx in zip(blocks, where, strict=True)]
    remainder = spans - int(per_slot[keep].sum())
    if remainder:
        fill = rng.choice(health, size=remainder)
        for ti in health:
            k = int((fill == ti).sum())
            if k:
                blocks.append(_draw_block(rng, ti, TEMPLATES[ti], k))
    return [b for b in blocks if len(b.code)]


def _chunk_table(rng: np.random.Generator, nt: _NodeTable, blocks: list[_Block], t0_ns: int, t1_ns: int) -> pa.Table:
    """Expand trace blocks into span rows with ids, timing and attributes."""
    gnode_parts, trace_parts, parent_parts = [], [], []
    row0 = 0
    trace0 = 0
    for b in blocks:
        k, n = b.counts.shape
        t = TEMPLATES[b.template]
        flat = b.counts.ravel()
        start = np.cumsum(flat) - flat + row0
        local_node = np.repeat(np.tile(np.arange(n), k), flat)
        local_trace = np.repeat(np.repeat(np.arange(k), n), flat)
        parents = np.array([nd.parent for nd in t.nodes], dtype=np.int64)[local_node]
        parent_row = np.where(parents >= 0, start[local_trace * n + np.maximum(parents, 0)], -1)
        gnode_parts.append(local_node + nt.offsets[b.template])
        trace_parts.append(local_trace + trace0)
        parent_parts.append(parent_row)
        row0 += int(flat.sum())
        trace0 += k
    gnode = np.concatenate(gnode_parts)
    trace = np.concatenate(trace_parts)
    parent = np.concatenate(parent_parts)
    rows, traces = len(gnode), trace0
    code = np.concatenate([b.code for b in blocks])
    tier = np.concatenate([b.tier for b in blocks])
    region = np.concatenate([b.region for b in blocks])
    slow = np.concatenate([b.slow for b in blocks])
    db_error = np.concatenate([b.db_error for b in blocks])

    # Per-trace draws: start time (uniform over this chunk's share of the window), load, ids.
    starts = np.sort(rng.integers(t0_ns, t1_ns, size=traces))[rng.permutation(traces)]
    load = np.exp(rng.normal(0.0, 0.25, size=traces))
    item_id = np.minimum(rng.zipf(1.4, size=traces), 20_000) + 1000
    user_num = rng.integers(100_000, 1_000_000, size=traces)
    trace_ids = _hex_ids(rng, traces, 16)
    span_ids = _hex_ids(rng, rows, 8)

    # The last datastore call of each trace: where a slow query or a database error lands.
    ds_rows = np.nonzero(nt.is_ds[gnode])[0]
    ds_trace = trace[ds_rows]
    last = np.r_[ds_trace[1:] != ds_trace[:-1], True] if len(ds_rows) else np.zeros(0, dtype=bool)
    last_ds = np.full(traces, -1, dtype=np.int64)
    last_ds[ds_trace[last]] = ds_rows[last]

    # Own time of each span (ns): lognormal per node, scaled by the trace's load; seconds more on slow calls.
    self_ms = nt.median_ms[gnode] * np.exp(nt.sigma[gnode] * rng.standard_normal(rows)) * load[trace]
    slow_rows = last_ds[slow & (last_ds >= 0)]
    self_ms[slow_rows] += 4000.0 + np.exp(rng.normal(np.log(2500.0), 0.6, size=len(slow_rows)))
    self_ns = (self_ms * 1e6).astype(np.int64) + 1000
    gap_ns = np.where(parent >= 0, (rng.exponential(0.08, size=rows) * 1e6).astype(np.int64), 0)
    pre_ns = (self_ns * rng.uniform(0.1, 0.6, size=rows)).astype(np.int64)

    depth = nt.depth[gnode]
    max_depth = int(depth.max()) if rows else 0
    level_rows = [np.nonzero(depth == d)[0] for d in range(max_depth + 1)]
    # Bottom-up: a span lasts its own time plus its children's (gaps included), run one after another.
    dur_ns = self_ns.copy()
    for d in range(max_depth, 0, -1):
        r = level_rows[d]
        dur_ns += np.bincount(parent[r], weights=dur_ns[r] + gap_ns[r], minlength=rows).astype(np.int64)
    # Top-down: a child starts after its parent's "before" time and its earlier siblings.
    offset_ns = np.zeros(rows, dtype=np.int64)
    for d in range(1, max_depth + 1):
        r = level_rows[d]
        par = parent[r]
        w = dur_ns[r] + gap_ns[r]
        excl = np.cumsum(w) - w
        first = np.r_[True, par[1:] != par[:-1]]
        group_first = np.maximum.accumulate(np.where(first, np.arange(len(r)), 0))
        offset_ns[r] = offset_ns[par] + pre_ns[par] + (excl - excl[group_first]) + gap_ns[r]
    start_ns = starts[trace] + offset_ns

    # Status: HTTP spans carry the request's status; health probes theirs. OTel status ERROR on server spans
    # with 5xx, client spans with >= 400 (semantic conventions), and failed datastore calls.
    http_code = code[trace]
    is_http = nt.http[gnode]
    is_err_db = np.zeros(rows, dtype=bool)
    is_err_db[last_ds[db_error & (last_ds >= 0)]] = True
    err = (is_http & nt.server[gnode] & (http_code >= 500)) | (is_http & nt.client[gnode] & (http_code >= 400))
    err |= is_err_db
    ok_one = nt.ok_status[gnode] == 1
    status = np.where(err, 2, np.where(ok_one & is_http & nt.server[gnode], 1, 0)).astype(np.int64)

    # Export order: a span is sent when it ends, so children arrive before their parent and the root last.
    # Rows are put in that order before any column is built (no copy of the finished table).
    order = np.lexsort((-np.arange(rows), start_ns + dur_ns))
    parent_of = parent[order]
    gnode, trace, start_ns, dur_ns = gnode[order], trace[order], start_ns[order], dur_ns[order]
    status, err, is_err_db, http_code = status[order], err[order], is_err_db[order], http_code[order]
    is_http = is_http[order]
    del offset_ns, self_ns, gap_ns, pre_ns, parent, level_rows

    cols: dict[str, pa.Array] = {
        TRACE_ID: pc.take(trace_ids, pa.array(trace)),
        SPAN_ID: pc.take(span_ids, pa.array(order)),
        PARENT_ID: pc.take(span_ids, pa.array(parent_of, mask=parent_of < 0)),
        TIMESTAMP: pa.array(start_ns // 1000, pa.int64()).cast(pa.timestamp("us", tz="UTC")),
        "duration_ms": pa.array(dur_ns / 1e6, pa.float64()),
        "status_code": pa.array(status, pa.int64()),
        "error": pa.array(np.ones(rows, dtype=bool), pa.bool_(), mask=~err),
    }
    new_conv = nt.new_conv[gnode]
    cols["http.response.status_code"] = pa.array(http_code, pa.int64(), mask=~(is_http & new_conv))
    cols["http.status_code"] = pa.array(http_code, pa.int64(), mask=~(is_http & ~new_conv))
    messages = pa.array(["canceling statement due to statement timeout", "deadlock detected", "connection reset"])
    msg_idx = np.where(slow[trace], 0, rng.integers(1, 3, size=rows))
    cols["status_message"] = pc.take(messages, pa.array(msg_idx, mask=~is_err_db))
    for fname, values in nt.static.items():
        cols[fname] = _string_column(values, gnode)
    # Paths with the request's item id: "/api/products/" + "1234".
    ids = pc.cast(pa.array(item_id[trace], mask=~nt.has_id[gnode]), pa.string())
    for path_field in ("url.path", "http.target"):
        base = cols[path_field]
        cols[path_field] = pc.coalesce(pc.binary_join_element_wise(base, ids, ""), base)
    user_rows = nt.user_attrs[gnode] & ~nt.health[gnode]
    cols["user.id"] = pc.binary_join_element_wise(
        "usr_", pc.cast(pa.array(user_num[trace], mask=~user_rows), pa.string()), ""
    )
    tier_rows = nt.server[gnode] & ~nt.health[gnode]
    cols["user.tier"] = pc.take(pa.array([n for n, _, _ in TIERS]), pa.array(tier[trace], mask=~tier_rows))
    cols["cloud.region"] = pc.take(pa.array([n for n, _ in REGIONS]), pa.array(region[trace]))
    svc = nt.service_index[gnode]
    pod = nt.pod_offset[svc] + rng.integers(0, nt.pod_count[svc])
    cols["k8s.pod.name"] = pc.take(pa.array(nt.pod_names), pa.array(pod))
    # A field no span of this chunk has gets no column (the manifest lists only fields some span has).
    names = [
        TRACE_ID,
        SPAN_ID,
        PARENT_ID,
        TIMESTAMP,
        *sorted(c for c in set(cols) - _CORE if cols[c].null_count < rows),
    ]
    return pa.table({k: cols[k] for k in names})


_CORE = {TRACE_ID, SPAN_ID, PARENT_ID, TIMESTAMP}


def synth_batches(
    spans: int, seed: int, window: float = DEFAULT_WINDOW, start: datetime = DEFAULT_START
) -> Iterator[Batch]:
    """Tables of synthetic spans, one per part file (``CHUNK_SPANS`` spans each), for :mod:`nectar.corpus.store`.

    Chunk ``i`` covers its share of the time window, proportional to its span count, so traffic is steady.
    """
    if spans < 0:
        raise NectarError("the number of spans must be >= 0")
    if not window > 0:
        raise NectarError("the time window must be > 0 seconds")
    nt = _NodeTable(TEMPLATES)
    health = health_templates()
    epoch_ns = int(start.timestamp()) * 1_000_000_000
    window_ns = int(window * 1e9)
    done = 0
    chunk = 0
    while done < spans:
        n = min(CHUNK_SPANS, spans - done)
        rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, chunk])))
        t0 = epoch_ns + window_ns * done // spans
        t1 = epoch_ns + window_ns * (done + n) // spans
        table = _chunk_table(rng, nt, _chunk_blocks(rng, n, health), t0, max(t1, t0 + 1))
        yield table, column_map_from_schema(table.schema)
        done += n
        chunk += 1


def synth_corpus(
    out: str | Path,
    spans: int,
    seed: int,
    sample_rate: float = 1.0,
    window: float = DEFAULT_WINDOW,
    overwrite: bool = False,
    start: datetime = DEFAULT_START,
) -> Manifest:
    """Write a synthetic corpus of exactly ``spans`` spans to ``out`` and return its manifest.

    Deterministic: the same ``spans``, ``seed``, ``window`` and ``start`` give byte-identical files.
    ``sample_rate`` is recorded in the manifest (10 = the corpus stands for ten times as much traffic).
    """
    from nectar.corpus.store import create_corpus

    if not sample_rate > 0:
        raise NectarError("the sample rate must be > 0 (1 = the corpus is all the traffic)")
    source = {
        "format": "synth",
        "generator": GENERATOR,
        "seed": seed,
        "spans": spans,
        "window_seconds": window,
        "start": start.isoformat().replace("+00:00", "Z"),
    }
    return create_corpus(
        Path(out),
        synth_batches(spans, seed, window, start),
        sources=[source],
        options={},
        sample_rate=sample_rate,
        overwrite=overwrite,
    )


__all__ = ["CHUNK_SPANS", "DEFAULT_WINDOW", "GENERATOR", "synth_batches", "synth_corpus"]
