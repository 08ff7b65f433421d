"""The shapes of the contract as frozen dataclasses and string enums.

Field names are the contract's JSON names. Timestamps are timezone-aware
``datetime`` objects in UTC. Every result keeps the document it was decoded
from (``to_dict()``), so handing it back (``present``) is exact, and decodes
each of its fields from it when the field is first read.
"""

from __future__ import annotations

import enum
import functools
from dataclasses import dataclass, field, fields, is_dataclass
from datetime import datetime, timezone
from typing import Any, Callable, ClassVar, Dict, Mapping, Optional, Tuple, Type, TypeVar, Union, cast

from ._native import Document, Field, Shape

T = TypeVar("T")
E = TypeVar("E", bound=enum.Enum)


class Outcome(str, enum.Enum):
    """The canonical outcome of a start."""

    ACCEPTED = "accepted"
    DEDUPED = "deduped"
    SCOPE_BUSY = "scope_busy"
    BLOCKED = "blocked"
    DENIED = "denied"


class RunStatus(str, enum.Enum):
    """The status of a run; ``queued`` and ``running`` hold the scope."""

    BLOCKED = "blocked"
    PENDING = "pending"
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    PARTIALLY_SUCCEEDED = "partially_succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


class Initiator(str, enum.Enum):
    """Who started a run; only user-initiated runs notify."""

    USER = "user"
    SCHEDULE = "schedule"
    SYSTEM = "system"


class CompletionOutcome(str, enum.Enum):
    """How a worker ends a run."""

    SUCCEEDED = "succeeded"
    PARTIALLY_SUCCEEDED = "partially_succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


class Tone(str, enum.Enum):
    """The visual tone of a presentation."""

    SUCCESS = "success"
    INFO = "info"
    WARNING = "warning"
    DANGER = "danger"


class Consent(str, enum.Enum):
    GRANTED = "granted"
    MISSING = "missing"
    REVOKED = "revoked"


class Credential(str, enum.Enum):
    PRESENT = "present"
    MISSING = "missing"
    EXPIRED = "expired"
    INVALID = "invalid"


class Health(str, enum.Enum):
    OK = "ok"
    UNHEALTHY = "unhealthy"
    UNKNOWN = "unknown"


def _new(cls: Type[T], **values: Any) -> T:
    """A frozen dataclass from a result document's decoded fields, every field
    given, set at once: its generated ``__init__`` sets each field through
    ``object.__setattr__``, which is most of what decoding a result costs."""
    obj = cls.__new__(cls)
    obj.__dict__.update(values)
    return obj


_MEMBERS: Dict[type, Dict[str, Any]] = {}


def _members(kind: Type[E]) -> Dict[str, E]:
    members = _MEMBERS.get(kind)
    if members is None:
        members = _MEMBERS[kind] = {m.value: m for m in kind}
    return members


def _enum(kind: Type[E], value: str) -> E:
    """``kind(value)`` without the enum machinery's call (a dict lookup)."""
    return _members(kind)[value]


@functools.lru_cache(maxsize=4096)
def _parse_time(value: str) -> datetime:
    # Python 3.10's fromisoformat does not read "Z". The same instants recur
    # (a run's created_at, since and queued_at), hence the cache.
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _time(value: Optional[str]) -> Optional[datetime]:
    if value is None:
        return None
    return _parse_time(value)


def _required_time(value: str) -> datetime:
    parsed = _time(value)
    assert parsed is not None
    return parsed


def format_time(value: datetime, field: str = "timestamp") -> str:
    """RFC 3339 in UTC, as the contract writes it."""
    if value.tzinfo is None:
        from ._errors import invalid

        raise invalid(field, "must be a timezone-aware datetime")
    value = value.astimezone(timezone.utc)
    text = value.strftime("%Y-%m-%dT%H:%M:%S")
    if value.microsecond:
        text += f".{value.microsecond:06d}"
    return text + "Z"


def _raw() -> Any:
    return field(default=None, compare=False, repr=False)


D = TypeVar("D", bound="_Decoded")


class _Decoded:
    """A result decoded from its document one field at a time, when the field
    is first read, and kept: a caller that reads ``outcome`` and ``run.id`` of
    a start does not pay for building every run field, reason and timestamp
    it never reads. The document is ``raw`` (a dict), or for a result the
    native module hands over a ``Document`` that converts only what is read
    (``raw`` is then made from it when first read). Reading a field, an
    ``==``, a ``repr``, ``dataclasses.replace``, a copy or a pickle all see
    the whole value; only ``vars()`` shows what has been read so far."""

    __slots__ = ()

    # Makes an instance from a document: the native `Shape` of the class,
    # which `_decoded` gives each one, and which the native module makes a
    # call's result with.
    _shape: ClassVar["Shape[Any]"]

    @classmethod
    def from_dict(cls: Type[D], doc: Union[Mapping[str, Any], Document]) -> D:
        return cast(D, cls._shape(doc))

    def __getstate__(self) -> Dict[str, Any]:
        # A copy or a pickle holds the document as a dict, not the native Document.
        state = dict(self.__dict__)
        if state.pop("_document", None) is not None:
            state["raw"] = getattr(self, "raw")
        return state


class _Raw:
    """``raw`` of a ``_Decoded`` made from a ``Document``: the whole document
    as a dict, converted when first read (and kept, in place of the
    Document). ``None`` (the field's default) for an instance without one."""

    __slots__ = ()

    def __get__(self, obj: Any, owner: Any = None) -> Any:
        if obj is None:
            return None
        document = obj.__dict__.pop("_document", None)
        if document is None:
            return None
        # Every field is read from this dict from now on; the Document is let go.
        raw = obj.__dict__["raw"] = document.to_dict()
        return raw


def _opaque(value: Any) -> Any:
    """The host's own document (``params``, ``summary``) as plain data: a
    ``Document`` only ever stands for one of the contract's shapes."""
    return value.to_dict() if type(value) is Document else value


def _decoded(**decoders: Callable[[Any], Any]) -> Callable[[Type[D]], Type[D]]:
    """Gives a ``_Decoded`` dataclass's fields their native ``Field`` (taken from
    the document as they are, unless decoded by the function named here) and
    ``raw`` its ``_Raw``. Applied after ``@dataclass``, which has already read
    the class's attributes for defaults."""

    def apply(cls: Type[D]) -> Type[D]:
        names = [f.name for f in fields(cast(Any, cls)) if f.name != "raw"]
        unknown = set(decoders) - set(names)
        if unknown:
            raise TypeError(f"{cls.__name__} has no fields {sorted(unknown)}")
        for name in names:
            setattr(cls, name, Field(name, decoders.get(name)))
        setattr(cls, "raw", _Raw())
        setattr(cls, "_shape", Shape(cls))
        return cls

    return apply


def _enum_of(kind: Type[E]) -> Callable[[Any], E]:
    # The lookup itself, called from C: no Python frame per decoded field.
    return _members(kind).__getitem__


def _tuple_of(decode: Callable[[Any], T]) -> Callable[[Any], Tuple[T, ...]]:
    return lambda values: tuple(decode(v) for v in values)


@dataclass(frozen=True)
class Actor:
    """Who asks, as facts the host has already established."""

    id: str
    is_member: bool
    capabilities: Tuple[str, ...] = ()


@dataclass(frozen=True)
class Action:
    """A labelled link: a next step, or "View run"."""

    label: str
    url: str

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> "Action":
        return _new(cls, label=doc["label"], url=doc["url"])


@dataclass(frozen=True)
class Reason:
    """One failing readiness check, rendered for people."""

    code: str
    message: str
    next_steps: Tuple[Action, ...]

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> "Reason":
        return _new(
            cls,
            code=doc["code"],
            message=doc["message"],
            next_steps=tuple(Action.from_dict(a) for a in doc["next_steps"]),
        )


@_decoded(
    status=_enum_of(RunStatus),
    initiator=_enum_of(Initiator),
    created_at=_required_time,
    since=_required_time,
    queued_at=_time,
    started_at=_time,
    finished_at=_time,
    stale_at=_time,
    reasons=tuple,
    params=_opaque,
    summary=_opaque,
)
@dataclass(frozen=True)
class Run(_Decoded):
    """The record of one start (``operation_runs``)."""

    id: int
    operation: str
    tenant_id: str
    provider_connection_id: Optional[str]
    subject: Optional[str]
    status: RunStatus
    initiator: Initiator
    actor_id: str
    params: Optional[Dict[str, Any]]
    created_at: datetime
    since: datetime
    queued_at: Optional[datetime]
    started_at: Optional[datetime]
    finished_at: Optional[datetime]
    stale_at: Optional[datetime]
    fencing_token: Optional[int]
    reason_code: Optional[str]
    reasons: Tuple[str, ...]
    summary: Any
    sequence_id: Optional[int]
    sequence_position: Optional[int]
    replaced_run_id: Optional[int]
    raw: Dict[str, Any] = _raw()

    @property
    def is_active(self) -> bool:
        """``queued`` or ``running``: the run holds its scope."""
        return self.status in (RunStatus.QUEUED, RunStatus.RUNNING)

    def to_dict(self) -> Dict[str, Any]:
        return dict(self.raw)


@_decoded(
    outcome=_enum_of(Outcome),
    run=Run._shape,
    holder=Run._shape,
    reasons=_tuple_of(Reason.from_dict),
    pending=_tuple_of(Run.from_dict),
)
@dataclass(frozen=True)
class StartResult(_Decoded):
    """The answer to a start: accepted, deduped, scope_busy, blocked or denied."""

    outcome: Outcome
    operation: str
    tenant_id: str
    run: Optional[Run]
    holder: Optional[Run]
    reasons: Tuple[Reason, ...]
    status: Optional[int]
    provider_connection_id: Optional[str]
    replaced_run_id: Optional[int]
    params_differ: Optional[bool]
    pending: Tuple[Run, ...]
    raw: Dict[str, Any] = _raw()

    @property
    def accepted(self) -> bool:
        return self.outcome is Outcome.ACCEPTED

    def to_dict(self) -> Dict[str, Any]:
        return dict(self.raw)


@_decoded(
    run=Run.from_dict,
    next=StartResult._shape,
    next_blocked=_tuple_of(StartResult.from_dict),
)
@dataclass(frozen=True)
class CompletionResult(_Decoded):
    """What ending a run produced."""

    run: Run
    notify_initiator: bool
    next: Optional[StartResult]
    next_blocked: Tuple[StartResult, ...]
    raw: Optional[Dict[str, Any]] = _raw()

    def to_dict(self) -> Dict[str, Any]:
        return to_dict(self)


@_decoded(reaped=_tuple_of(Run.from_dict), next=_tuple_of(StartResult.from_dict))
@dataclass(frozen=True)
class ReapResult(_Decoded):
    """Runs ended as stale, and pending runs admitted or blocked as scopes freed."""

    reaped: Tuple[Run, ...]
    next: Tuple[StartResult, ...]
    raw: Optional[Dict[str, Any]] = _raw()

    def to_dict(self) -> Dict[str, Any]:
        return to_dict(self)


@dataclass(frozen=True)
class ProviderConnection:
    """A tenant's link to a provider: readiness facts only, never secrets.

    Also the input of ``upsert_connection`` (build it, or ``dataclasses.replace`` one).
    """

    id: str
    tenant_id: str
    provider: str
    display_name: str = ""
    is_default: bool = False
    enabled: bool = True
    consent: Consent = Consent.MISSING
    credential: Credential = Credential.MISSING
    credential_expires_at: Optional[datetime] = None
    health: Health = Health.UNKNOWN

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> "ProviderConnection":
        return _new(
            cls,
            id=doc["id"],
            tenant_id=doc["tenant_id"],
            provider=doc["provider"],
            display_name=doc["display_name"],
            is_default=doc["is_default"],
            enabled=doc["enabled"],
            consent=_enum(Consent, doc["consent"]),
            credential=_enum(Credential, doc["credential"]),
            credential_expires_at=_time(doc["credential_expires_at"]),
            health=_enum(Health, doc["health"]),
        )

    def to_dict(self) -> Dict[str, Any]:
        return to_dict(self)


@_decoded(tone=_enum_of(Tone), actions=_tuple_of(Action.from_dict))
@dataclass(frozen=True)
class Presentation(_Decoded):
    """Operator feedback: the same words on every host."""

    outcome: str
    status_label: str
    tone: Tone
    title: str
    body: str
    run_url: Optional[str]
    actions: Tuple[Action, ...]
    raw: Optional[Dict[str, Any]] = _raw()

    def to_dict(self) -> Dict[str, Any]:
        return to_dict(self)


@_decoded(
    attempted_at=_required_time,
    initiator=_enum_of(Initiator),
    outcome=_enum_of(Outcome),
    reasons=tuple,
)
@dataclass(frozen=True)
class StartAttempt(_Decoded):
    """The audit row of one start attempt."""

    id: int
    attempted_at: datetime
    source: str
    operation: str
    tenant_id: str
    provider_connection_id: Optional[str]
    subject: Optional[str]
    actor_id: str
    initiator: Initiator
    outcome: Outcome
    status: Optional[int]
    run_id: Optional[int]
    holder_run_id: Optional[int]
    reason_code: Optional[str]
    reasons: Tuple[str, ...]
    replaced_run_id: Optional[int]
    params_differ: Optional[bool]
    raw: Optional[Dict[str, Any]] = _raw()

    def to_dict(self) -> Dict[str, Any]:
        return to_dict(self)


def to_dict(value: Any) -> Dict[str, Any]:
    """The JSON document of a result (exactly as received) or of an input."""
    document = _json(value, "", 0)
    if not isinstance(document, dict):
        raise TypeError(f"{type(value).__name__} is not a document")
    return document


#: The contract's own objects (dataclasses, enums, datetimes) sit at most
#: this deep in an argument (a request's actor, a result's run); below that is
#: the host's own data (params, summary): JSON data only.
_CONTRACT_DEPTH = 4


def contract_value(value: Any, field: str) -> Any:
    """One of the contract's objects as JSON data, for the native module,
    which calls this for each value it cannot read as JSON itself (the rest of
    a document never comes here). ``None`` fields of dataclasses are left out
    so the contract's defaults apply; what they hold is converted by the
    native module in turn. Anything else comes back untouched, for the native
    module to refuse naming the field; a naive datetime raises ``ValueError``,
    the field's ``invalid_request``."""
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("must be a timezone-aware datetime")
        return format_time(value, field)
    if is_dataclass(value) and not isinstance(value, type):
        raw = getattr(value, "raw", None)
        if isinstance(raw, dict):
            return raw
        return {f.name: getattr(value, f.name) for f in fields(value) if getattr(value, f.name) is not None}
    return value


def _json(value: Any, field: str, depth: int) -> Any:
    """``value`` as JSON data, as the native module reads it (for ``to_dict``,
    which no call goes through)."""
    if depth < _CONTRACT_DEPTH:
        try:
            value = contract_value(value, field or "timestamp")
        except ValueError as err:
            from ._errors import invalid

            raise invalid(field or "timestamp", str(err)) from None
    if isinstance(value, dict):
        return {k: _json(v, f"{field}.{k}" if field else str(k), depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json(v, f"{field}[{i}]", depth + 1) for i, v in enumerate(value)]
    return value
