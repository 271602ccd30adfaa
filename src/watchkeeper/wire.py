"""The JSON shapes of the native REST API (``/api/v1``), shared by server and client.

Only msgspec and the standard library here, so ``watchkeeper.client`` installs
without server dependencies and both sides always agree.
"""

from __future__ import annotations

from typing import Any

import msgspec

WIRE_VERSION = 1


class WirePoint(msgspec.Struct, frozen=True, array_like=True):
    """One point in a write batch, sent as ``[series, ts, value]``.

    ``value`` is a number or a histogram ``{"bucket": count}``.
    """

    series: str
    ts: float
    value: float | dict[str, int]


class WriteBatch(msgspec.Struct, frozen=True, kw_only=True):
    """``POST /api/v1/write``: points, plus optional units by series."""

    points: list[WirePoint]
    units: dict[str, str] = msgspec.field(default_factory=dict)


COLUMNS_CONTENT_TYPE = "application/vnd.watchkeeper.columns+msgpack"
"""The ``Content-Type`` of :class:`WriteColumns` bodies."""


class WriteColumns(msgspec.Struct, frozen=True, kw_only=True):
    """``POST /api/v1/write`` in bulk: number points as columns, msgpack-encoded.

    Sent with ``Content-Type: application/vnd.watchkeeper.columns+msgpack``. Number
    point ``i`` belongs to series ``series[index[i]]``; ``index`` holds little-endian
    int32s, ``ts`` (seconds) and ``values`` little-endian float64s, one per point, as
    msgpack binary strings (``array('i', ...).tobytes()`` or numpy's ``tobytes()``
    on a little-endian machine). ``points`` carries histograms (or any other point) as
    in :class:`WriteBatch`; they are stored before the columns. The server decodes the
    columns straight into arrays: no per-point objects on either side.
    """

    series: list[str]
    index: bytes
    ts: bytes
    values: bytes
    units: dict[str, str] = msgspec.field(default_factory=dict)
    points: list[WirePoint] = msgspec.field(default_factory=list)


class WriteResult(msgspec.Struct, frozen=True, kw_only=True):
    written: int


class SeriesInfo(msgspec.Struct, frozen=True, kw_only=True):
    """What the archive knows about a series."""

    series: str
    subject: str
    plugin: str
    metric: str
    labels: dict[str, str]
    unit: str
    kind: str
    first_ts: float | None
    last_ts: float | None


class SeriesList(msgspec.Struct, frozen=True, kw_only=True):
    """``GET /api/v1/series``."""

    series: list[SeriesInfo]
    total: int


class QueryResult(msgspec.Struct, frozen=True, kw_only=True):
    """``GET /api/v1/query``: points as ``[ts, value]``; with ``step``, one per bucket."""

    series: str
    unit: str
    start: float
    end: float
    step: float | None
    agg: str | None
    points: list[tuple[float, float | dict[str, int] | None]]


class DeleteResult(msgspec.Struct, frozen=True, kw_only=True):
    deleted: int


class Health(msgspec.Struct, frozen=True, kw_only=True):
    status: str  # "ok", or "degraded" (watchkeeper's own overload) with the reasons
    version: str
    reasons: list[str] = msgspec.field(default_factory=list)


class ErrorBody(msgspec.Struct, frozen=True, kw_only=True):
    """Every error response, in esmond's ``{"detail": ...}`` form."""

    detail: str


# ---------------------------------------------------------------- inventory (/api/v1/inventory)


class InventoryNode(msgspec.Struct, frozen=True, kw_only=True):
    """One node of a model: ``device``, ``interface``, ``service``, ``site``... or a plugin's."""

    id: str
    kind: str
    name: str
    attrs: dict[str, Any]
    labels: list[str]


class InventoryRelation(msgspec.Struct, frozen=True, kw_only=True):
    """``source -kind-> target`` (``has_interface``, ``links_to``, ``runs_on``, ``in_site``...)."""

    source: str
    kind: str
    target: str
    attrs: dict[str, Any]


class InventoryStats(msgspec.Struct, frozen=True, kw_only=True):
    """A model's counters since the server started, and whether a build runs now."""

    builds: int
    build_failures: int  # raised or timed out: the model was marked stale
    discarded_builds: int  # too many notifications arrived during them
    notifications: int  # routed to this model
    handler_errors: int  # of those, the ones its handler could not apply
    building: bool
    last_build_seconds: float | None


class InventoryCollector(msgspec.Struct, frozen=True, kw_only=True):
    """One model collector's latest model, in brief. ``stale_since`` is set while its
    builds fail (the model is then the last good one). ``stats`` is None from servers
    that did not send it."""

    name: str
    version: int
    nodes: int
    relations: int
    synced_at: float | None
    stale_since: float | None
    stale_reason: str | None
    versions: list[int]  # the versions kept for diffs
    stats: InventoryStats | None = None


class InventoryNotified(msgspec.Struct, frozen=True, kw_only=True):
    """``POST /api/v1/inventory/notifications``: of the ``notifications`` received, how
    many (notification, endpoint) pairs ``matched`` and how many of those were ``applied``
    (a handler that cannot use one leaves no trace)."""

    notifications: int
    matched: int
    applied: int


class InventoryCollectors(msgspec.Struct, frozen=True, kw_only=True):
    """``GET /api/v1/inventory``."""

    collectors: list[InventoryCollector]


class InventoryGraph(msgspec.Struct, frozen=True, kw_only=True):
    """``GET /api/v1/inventory/{collector}``: the nodes passing the filters and the relations
    between them (``collector`` counts the whole model).

    One page: the nodes ``offset`` to ``offset + limit`` of the ``total`` passing the
    filters, by id, and the relations leaving them whose target passes the filters too
    (``total_relations`` in all pages), all from model ``version``; ask for the next pages
    with ``version`` set to it for a consistent whole. Servers before paging sent every
    node and none of these fields (``total`` is then None).
    """

    collector: InventoryCollector
    nodes: list[InventoryNode]
    relations: list[InventoryRelation]
    version: int | None = None
    total: int | None = None
    total_relations: int | None = None
    offset: int = 0
    limit: int | None = None


class InventoryNodeDetail(msgspec.Struct, frozen=True, kw_only=True):
    """``GET /api/v1/inventory/{collector}/node?id=ID``: one node of model ``version``,
    every relation leaving it (``relations_out``) and entering it (``relations_in``), and
    the nodes at their other ends (``neighbours``, each once, by id)."""

    collector: str
    version: int
    node: InventoryNode
    relations_out: list[InventoryRelation]
    relations_in: list[InventoryRelation]
    neighbours: list[InventoryNode]


class InventoryNodeChange(msgspec.Struct, frozen=True, kw_only=True):
    before: InventoryNode
    after: InventoryNode


class InventoryRelationChange(msgspec.Struct, frozen=True, kw_only=True):
    before: InventoryRelation
    after: InventoryRelation


class InventoryDiff(msgspec.Struct, frozen=True, kw_only=True):
    """``GET /api/v1/inventory/{collector}/versions/{a}..{b}``: what changed from a to b."""

    collector: str
    from_version: int
    to_version: int
    appeared: list[InventoryNode]
    disappeared: list[InventoryNode]
    changed: list[InventoryNodeChange]
    relations_appeared: list[InventoryRelation]
    relations_disappeared: list[InventoryRelation]
    relations_changed: list[InventoryRelationChange]


# ------------------------------------------------------ remote collectors (/api/v1/collect)


class CollectDevice(msgspec.Struct, frozen=True, kw_only=True):
    """A device as a remote collector gets it; ``connections`` hold references, never secrets."""

    name: str
    address: str = ""
    tags: list[str] = msgspec.field(default_factory=list)
    groups: list[str] = msgspec.field(default_factory=list)
    interval: float | None = None
    connections: dict[str, dict[str, Any]] = msgspec.field(default_factory=dict)


class CollectCollector(msgspec.Struct, frozen=True, kw_only=True):
    """A configured collector: the settings' ``collectors[]`` entry."""

    name: str
    plugin: str
    interval: float = 30.0
    timeout: float = 10.0
    devices: list[str] = msgspec.field(default_factory=lambda: ["*"])
    options: dict[str, Any] = msgspec.field(default_factory=dict)


class CollectConfig(msgspec.Struct, frozen=True, kw_only=True):
    """``GET /api/v1/collect/config``: everything a remote collector runs, in one response.

    ``version`` (also the ETag) changes whenever anything else does; ``refresh`` is how
    often (seconds) the collector should ask again.
    """

    version: str
    devices: list[CollectDevice]
    collectors: list[CollectCollector]
    refresh: float = 60.0


class CollectMessage(msgspec.Struct, frozen=True, array_like=True):
    """``[ts, text]``: one line of a check result."""

    ts: float
    text: str


class CollectFamily(msgspec.Struct, frozen=True, array_like=True):
    """``[type, help, unit]``: a metric family's metadata, as a scraped exporter's
    ``# TYPE``, ``# HELP`` and ``# UNIT`` said it."""

    type: str
    help: str
    unit: str


class CollectResult(msgspec.Struct, frozen=True, kw_only=True):
    """One poll of one job: its status, messages and measurements; ``families``: the
    metadata of the metric families it read, by family name (the ``prometheus``
    collector, when they changed)."""

    plugin: str
    job: str
    device: str
    scheduled: float
    started: float
    finished: float
    status: str  # ok, partial, warning, critical, errored, unknown
    messages: list[CollectMessage] = msgspec.field(default_factory=list)
    points: list[WirePoint] = msgspec.field(default_factory=list)
    units: dict[str, str] = msgspec.field(default_factory=dict)
    families: dict[str, CollectFamily] = msgspec.field(default_factory=dict)


class CollectBatch(msgspec.Struct, frozen=True, kw_only=True):
    """``POST /api/v1/collect/results``: results in poll order.

    ``collector`` names the sender (and its spool); ``seq`` is the spool position of the
    last result, increasing, so a batch re-sent after a lost answer is recognised;
    ``dropped`` counts results the sender's bounded spool ever had to drop.
    """

    collector: str
    seq: int
    dropped: int = 0
    results: list[CollectResult]


class CollectAck(msgspec.Struct, frozen=True, kw_only=True):
    accepted: int
    duplicate: bool = False


class CollectJob(msgspec.Struct, frozen=True, kw_only=True):
    """One scheduled job of this server's scheduler. Times are epoch seconds; the ``last_``
    fields, ``status`` and ``lateness`` are null until its first poll ended."""

    job: str  # the job id, unique: <collector>:<device> for most collectors
    device: str
    collector: str  # its name in the configuration
    plugin: str  # the plugin it runs (an entry-point name or module:Class)
    interval: float  # the shortest of its intervals, seconds
    intervals: list[float]
    next_run: float  # its next slot, or the retry of an ERRORED poll when sooner
    running: bool
    skipped: int  # slots skipped because its previous poll still ran
    failures: int  # ERRORED polls in a row
    status: str | None = None  # ok, partial, warning, critical, errored, unknown
    reason: str = ""  # the check's messages of the latest poll
    local_fault: str | None = None  # the local resource that failed it (watchkeeper's own)
    last_scheduled: float | None = None
    last_started: float | None = None
    last_duration: float | None = None  # seconds
    lateness: float | None = None  # seconds the latest poll started after it was due


class CollectJobs(msgspec.Struct, frozen=True, kw_only=True):
    """``GET /api/v1/collect/jobs``: the jobs passing the filters, worst status first, a page
    at a time; ``statuses`` and ``collectors`` count every job, filters aside (``pending``:
    not polled yet)."""

    now: float
    total: int
    offset: int
    limit: int
    statuses: dict[str, int]
    collectors: dict[str, int]
    jobs: list[CollectJob]


class ReportMessage(msgspec.Struct, frozen=True, kw_only=True):
    """One line of a result in a report; ``ts`` is ISO 8601 UTC text."""

    ts: str
    text: str


class ReportMeasurement(msgspec.Struct, frozen=True, kw_only=True):
    """One measurement in a report: ``value`` is a number, a histogram (bucket -> count) or
    a JSON object, as the check produced it."""

    series: str
    value: Any
    unit: str = ""


class ReportResult(msgspec.Struct, frozen=True, kw_only=True):
    """One collector's result on one device in a report run."""

    status: str
    started: str  # ISO 8601 UTC
    duration_ms: float
    messages: list[ReportMessage] = msgspec.field(default_factory=list)
    measurements: list[ReportMeasurement] = msgspec.field(default_factory=list)


class ReportRun(msgspec.Struct, frozen=True, kw_only=True):
    """One run of a report: statuses rolled up by device and by collector, and
    ``results[collector][device]``."""

    started: str
    finished: str
    status: str
    devices: dict[str, str]
    plugins: dict[str, str]  # by collector name, as in every report
    results: dict[str, dict[str, ReportResult]]


class CollectReport(msgspec.Struct, frozen=True, kw_only=True):
    """``GET /api/v1/collect/report``: the report ``collect --report`` writes (version 1),
    over the latest poll of a device's jobs as one run named ``latest`` (``runs`` is empty
    while none of them has been polled)."""

    version: int
    generated: str
    status: str
    counts: dict[str, int]
    devices: dict[str, str]
    plugins: dict[str, str]
    runs: dict[str, ReportRun]


# ------------------------------------------------------------------ tokens (/api/v1/tokens)


class TokenInfo(msgspec.Struct, frozen=True, kw_only=True):
    """One token as listed: who holds it and what it may do, never its key."""

    id: str
    user: str
    scopes: list[str]
    created: int
    last_used: int | None


class TokenList(msgspec.Struct, frozen=True, kw_only=True):
    """``GET /api/v1/tokens``: oldest first."""

    tokens: list[TokenInfo]


class NewToken(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``POST /api/v1/tokens``: ``scopes`` are cumulative (``admin`` implies ``write``,
    which implies ``read``); the highest one named counts."""

    user: str
    scopes: list[str] = msgspec.field(default_factory=lambda: ["read"])


class CreatedToken(msgspec.Struct, frozen=True, kw_only=True):
    """The answer to a create: the token, and its key, shown this once."""

    id: str
    user: str
    scopes: list[str]
    created: int
    key: str


# ------------------------------------------------------------------ alarms (/api/v1/alarms)


class AlarmStep(msgspec.Struct, frozen=True, kw_only=True):
    """One entry of an alarm's log."""

    type: str
    t: float
    author: str = ""
    message: str = ""
    val: float | None = None


class AlarmInfo(msgspec.Struct, frozen=True, kw_only=True):
    """``GET /api/v1/alarms``: one alarm; ``steps`` only when one alarm is read."""

    id: str
    entity_id: str
    component: str
    resource: str
    opened: float
    state: int
    state_name: str
    status: int
    status_name: str
    ack: AlarmStep | None = None
    snoozed: bool = False
    resolved: float | None = None
    events: int = 0
    last_change: float = 0.0
    caused_by: str | None = None  # the upstream alarm's entity id (impact along the topology)
    steps: list[AlarmStep] = msgspec.field(default_factory=list)


class ActionAccepted(msgspec.Struct, frozen=True, kw_only=True):
    """``POST /api/v1/alarms/{key}/{action}`` and the event importer."""

    accepted: int
    ids: list[str]


class RollupSeries(msgspec.Struct, frozen=True, kw_only=True):
    """One series of a rollup: ``values[agg][i]`` belongs to the bucket starting at
    ``ts[i]`` (seconds); buckets without points are left out."""

    series: str
    unit: str
    ts: list[float]
    values: dict[str, list[float | None]]


class RollupResult(msgspec.Struct, frozen=True, kw_only=True):
    """``GET /api/v1/rollup``: every float series under ``prefix``, in key order."""

    prefix: str
    start: float
    end: float
    step: float
    aggs: list[str]
    series: list[RollupSeries]
