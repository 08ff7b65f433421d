"""``Gate`` (blocking; releases the GIL) and ``AsyncGate`` (awaitables on the
same process-wide runtime). The methods and argument names are the contract's.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import is_dataclass
from datetime import datetime
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, TypeVar, Union

from . import _log, _native
from ._errors import Error, error_for
from ._types import (
    Actor,
    CompletionOutcome,
    CompletionResult,
    Initiator,
    Presentation,
    ProviderConnection,
    ReapResult,
    Run,
    RunStatus,
    StartAttempt,
    StartResult,
    _CONTRACT_DEPTH,
    contract_value,
    format_time,
)

_native.set_contract_values(contract_value, _CONTRACT_DEPTH)
_native.set_layer(error_for, _log.LOGGER, _log.deliver_records)

# The result classes' shapes, with which the native module makes a call's
# result from its Document: no Python frame per result.
_START_RESULT: "_native.Shape[StartResult]" = StartResult._shape
_RUN: "_native.Shape[Run]" = Run._shape
_COMPLETION_RESULT: "_native.Shape[CompletionResult]" = CompletionResult._shape
_REAP_RESULT: "_native.Shape[ReapResult]" = ReapResult._shape
_PRESENTATION: "_native.Shape[Presentation]" = Presentation._shape

T = TypeVar("T")
Request = Union[Mapping[str, Any], None]
ActorLike = Union[Actor, Mapping[str, Any]]
Registry = Union[str, "os.PathLike[str]"]


def _options(**options: Any) -> Dict[str, Any]:
    clock = options.pop("manual_clock", None)
    if isinstance(clock, datetime):
        clock = format_time(clock, "manual_clock")
    doc = {k: v for k, v in options.items() if v is not None}
    if clock is not None:
        doc["manual_clock"] = clock
    return doc


# The optional fields of each request document, in the order the methods
# pass their values to `_document`.
_START = ("operation", "tenant_id", "actor", "provider_connection_id", "subject", "params", "initiator",
          "tenant_active")
_SEQUENCE = ("operations", "sequence") + _START[1:]
_COMPLETION = ("run_id", "fencing_token", "outcome", "reason_code", "summary")
_FILTER = ("tenant_id", "operation", "status", "active", "limit")


def _document(base: Any, names: Tuple[str, ...] = (), values: Tuple[Any, ...] = ()) -> Any:
    """A request document: ``base`` (a mapping or dataclass, may be None)
    updated with the fields among ``names`` whose ``values`` were given. The
    native module reads it, and asks ``contract_value`` about the contract's
    objects in it; anything else is refused there with the field named.
    Positional, not keyword fields: packing keywords costs a start more than
    the rest of this function."""
    if type(base) is dict and values.count(None) == len(values):
        # The common case, read as it is (the native module copies nothing back).
        return base
    given = {k: v for k, v in zip(names, values) if v is not None}
    if base is None:
        return given
    if isinstance(base, Mapping):
        doc = dict(base)
    elif is_dataclass(base) and not isinstance(base, type):
        doc = dict(contract_value(base, "request"))
    else:
        return base
    doc.update(given)
    return doc


def _settle(answer: Tuple[bool, Any], decode: Callable[[Any], T]) -> T:
    # The call's log records reach `logging` on this thread before it returns.
    _log.deliver_records()
    ok, payload = answer
    if ok:
        return decode(payload)
    raise error_for(*payload)


def _requests(requests: Any) -> Any:
    if isinstance(requests, (list, tuple)):
        return [_document(r) for r in requests]
    return requests


def _plain(doc: Any) -> Dict[str, Any]:
    return dict(doc)


def _none(_: Any) -> None:
    return None


def _runs(doc: Any) -> List[Run]:
    return [Run.from_dict(r) for r in doc]


def _attempts(doc: Any) -> List[StartAttempt]:
    return [StartAttempt.from_dict(a) for a in doc]


def _connection(doc: Any) -> Optional[ProviderConnection]:
    return None if doc is None else ProviderConnection.from_dict(doc)


def _connections(doc: Any) -> List[ProviderConnection]:
    return [ProviderConnection.from_dict(c) for c in doc]


def _checked(doc: Any) -> List[Union[StartResult, Error]]:
    return [
        error_for(item["error"]["code"], item["error"]["message"], None, item["error"].get("field"))
        if "error" in item
        else StartResult.from_dict(item)
        for item in doc
    ]


def _open(url: Any, registry: Any, registry_toml: Any, options: Dict[str, Any]) -> "_native.NativeGate":
    if isinstance(registry, os.PathLike):
        registry = os.fspath(registry)
    answer = _native.NativeGate.open(url, registry, registry_toml, options)
    ok, payload = answer
    if isinstance(payload, _native.NativeGate):
        return payload
    assert not ok
    raise error_for(*payload)


class Gate:
    """An open start gate. Blocking calls release the GIL; safe to share
    between threads and to keep using after ``os.fork()``."""

    def __init__(self, native: "_native.NativeGate") -> None:
        self._native = native

    @classmethod
    def open(
        cls,
        url: str,
        registry: Optional[Registry] = None,
        *,
        registry_toml: Optional[str] = None,
        connect_timeout_ms: Optional[int] = None,
        acquire_timeout_ms: Optional[int] = None,
        statement_timeout_ms: Optional[int] = None,
        max_connections: Optional[int] = None,
        manual_clock: Union[datetime, str, None] = None,
        schema: Optional[str] = None,
    ) -> "Gate":
        """Opens a gate on ``url`` (a SQLite path or ``sqlite:`` URL,
        ``sqlite::memory:``, or a ``postgres://`` URL). ``registry`` is the
        path of the registry TOML file; give the TOML text itself as
        ``registry_toml`` instead. On PostgreSQL, ``schema`` names the schema
        that holds the gate's tables (default ``startgate``)."""
        options = _options(
            connect_timeout_ms=connect_timeout_ms,
            acquire_timeout_ms=acquire_timeout_ms,
            statement_timeout_ms=statement_timeout_ms,
            max_connections=max_connections,
            manual_clock=manual_clock,
            schema=schema,
        )
        return cls(_open(url, registry, registry_toml, options))

    def migrate(self) -> None:
        """Applies the schema migrations (idempotent)."""
        return self._native.call("migrate", {}, _none)

    def start(
        self,
        request: Request = None,
        /,
        *,
        operation: Optional[str] = None,
        tenant_id: Optional[str] = None,
        actor: Optional[ActorLike] = None,
        provider_connection_id: Optional[str] = None,
        subject: Optional[str] = None,
        params: Optional[Mapping[str, Any]] = None,
        initiator: Union[Initiator, str, None] = None,
        tenant_active: Optional[bool] = None,
    ) -> StartResult:
        """The one start path: accepted / deduped / scope_busy / blocked / denied."""
        # A request dict given alone, the common case, goes as it is: this
        # test is `_document`'s first, without its call (a start's hot path).
        if (type(request) is dict and operation is None and tenant_id is None and actor is None
                and provider_connection_id is None and subject is None and params is None
                and initiator is None and tenant_active is None):
            return self._native.call("start", {"request": request}, _START_RESULT)
        doc = _document(request, _START, (operation, tenant_id, actor, provider_connection_id, subject, params,
                                          initiator, tenant_active))
        return self._native.call("start", {"request": doc}, _START_RESULT)

    def check(self, requests: Sequence[Mapping[str, Any]]) -> List[Union[StartResult, Error]]:
        """What ``start`` would answer for each request, writing nothing; an
        invalid request gets its exception in place."""
        return self._native.call("check", {"requests": _requests(requests)}, _checked)

    def start_sequence(
        self,
        request: Request = None,
        /,
        *,
        operations: Optional[Sequence[str]] = None,
        sequence: Optional[str] = None,
        tenant_id: Optional[str] = None,
        actor: Optional[ActorLike] = None,
        provider_connection_id: Optional[str] = None,
        subject: Optional[str] = None,
        params: Optional[Mapping[str, Any]] = None,
        initiator: Union[Initiator, str, None] = None,
        tenant_active: Optional[bool] = None,
    ) -> StartResult:
        """Starts operations in order on one scope; later steps are ``pending``."""
        doc = _document(request, _SEQUENCE, (operations, sequence, tenant_id, actor, provider_connection_id,
                                             subject, params, initiator, tenant_active))
        return self._native.call("start_sequence", {"request": doc}, _START_RESULT)

    def mark_running(self, run_id: int, fencing_token: int) -> Run:
        """The worker took the run. ``InvalidTransition`` means: stop."""
        return self._native.call(
            "mark_running", {"run_id": run_id, "fencing_token": fencing_token}, _RUN
        )

    def heartbeat(self, run_id: int, fencing_token: int) -> Run:
        """Extends a running run's lease."""
        return self._native.call("heartbeat", {"run_id": run_id, "fencing_token": fencing_token}, _RUN)

    def complete(
        self,
        completion: Request = None,
        /,
        *,
        run_id: Optional[int] = None,
        fencing_token: Optional[int] = None,
        outcome: Union[CompletionOutcome, str, None] = None,
        reason_code: Optional[str] = None,
        summary: Optional[Mapping[str, Any]] = None,
    ) -> CompletionResult:
        """Ends a run; dispatch ``next`` when it is accepted."""
        doc = _document(completion, _COMPLETION, (run_id, fencing_token, outcome, reason_code, summary))
        return self._native.call("complete", {"completion": doc}, _COMPLETION_RESULT)

    def cancel(self, run_id: int, reason_code: Optional[str] = None) -> CompletionResult:
        """Cancels a pending or active run (an operator's decision)."""
        return self._native.call(
            "cancel", {"run_id": run_id, "reason_code": reason_code}, _COMPLETION_RESULT
        )

    def reap_stale(self) -> ReapResult:
        """Ends stale runs; admits pending runs of the scopes this frees."""
        return self._native.call("reap_stale", {}, _REAP_RESULT)

    def get_run(self, run_id: int) -> Run:
        return self._native.call("get_run", {"run_id": run_id}, _RUN)

    def list_runs(
        self,
        *,
        tenant_id: Optional[str] = None,
        operation: Optional[str] = None,
        status: Union[RunStatus, str, None] = None,
        active: Optional[bool] = None,
        limit: Optional[int] = None,
    ) -> List[Run]:
        """Runs matching the filter, newest first."""
        doc = _document(None, _FILTER, (tenant_id, operation, status, active, limit))
        return self._native.call("list_runs", {"filter": doc}, _runs)

    def attempts_for_run(self, run_id: int) -> List[StartAttempt]:
        """The audit rows of the attempts that created, were refused by, or replaced a run."""
        return self._native.call("attempts_for_run", {"run_id": run_id}, _attempts)

    def upsert_connection(self, connection: Union[ProviderConnection, Mapping[str, Any]]) -> ProviderConnection:
        """Records a provider connection's readiness facts."""
        return self._native.call("upsert_connection", {"connection": _document(connection)}, ProviderConnection.from_dict)

    def get_connection(self, tenant_id: str, id: str) -> Optional[ProviderConnection]:
        return self._native.call("get_connection", {"tenant_id": tenant_id, "id": id}, _connection)

    def list_connections(self, tenant_id: str) -> List[ProviderConnection]:
        return self._native.call("list_connections", {"tenant_id": tenant_id}, _connections)

    def present(self, result: Union[StartResult, Mapping[str, Any]]) -> Presentation:
        """Operator feedback for a start result."""
        return self._native.call("present", {"result": result}, _PRESENTATION)

    def present_run(self, run: Union[Run, Mapping[str, Any]]) -> Presentation:
        """Run-detail wording, from the same reason catalogue."""
        return self._native.call("present_run", {"run": run}, _PRESENTATION)

    def advance_clock(self, seconds: float) -> None:
        """Moves a manual clock forward (tests, demos)."""
        return self._native.call("advance_clock", {"seconds": seconds}, _none)

    def metrics(self) -> Dict[str, Any]:
        """What this gate did in this process since it opened: ``starts``
        (operation → outcome → count), ``blocked`` (primary reason → count),
        ``takeovers``, ``reaped_runs``, ``errors`` (code → count) and
        ``latency`` (call kind → ``calls``, ``p50_us``, ``p99_us``). No database."""
        return self._native.call("metrics", {}, _plain)

    def close(self) -> None:
        """Closes the pool; later calls raise ``StoreUnavailable``."""
        failure = self._native.close()
        if failure is not None:
            raise error_for(*failure)

    def __enter__(self) -> "Gate":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _resolve(waiting: "List[asyncio.Future[Tuple[bool, Any]]]", ok: bool, payload: Any) -> None:
    # On the loop's thread, so after `_call` has put its future in `waiting`:
    # it does that before it first yields to the loop.
    future = waiting[0]
    if not future.cancelled():
        future.set_result((ok, payload))


class AsyncGate:
    """The asyncio face of the gate: the same methods, as coroutines, on the
    same process-wide runtime as ``Gate`` (no second runtime)."""

    def __init__(self, native: "_native.NativeGate") -> None:
        self._native = native

    @classmethod
    async def open(
        cls,
        url: str,
        registry: Optional[Registry] = None,
        *,
        registry_toml: Optional[str] = None,
        connect_timeout_ms: Optional[int] = None,
        acquire_timeout_ms: Optional[int] = None,
        statement_timeout_ms: Optional[int] = None,
        max_connections: Optional[int] = None,
        manual_clock: Union[datetime, str, None] = None,
        schema: Optional[str] = None,
    ) -> "AsyncGate":
        """Opens a gate (see ``Gate.open``) without blocking the event loop."""
        options = _options(
            connect_timeout_ms=connect_timeout_ms,
            acquire_timeout_ms=acquire_timeout_ms,
            statement_timeout_ms=statement_timeout_ms,
            max_connections=max_connections,
            manual_clock=manual_clock,
            schema=schema,
        )
        loop = asyncio.get_running_loop()
        return cls(await loop.run_in_executor(None, _open, url, registry, registry_toml, options))

    async def _call(self, method: str, args: Dict[str, Any], decode: Callable[[Any], T]) -> T:
        loop = asyncio.get_running_loop()
        waiting: "List[asyncio.Future[Tuple[bool, Any]]]" = []

        def done(ok: bool, payload: Any) -> None:  # on a startgate thread
            loop.call_soon_threadsafe(_resolve, waiting, ok, payload)

        # A call that needs no wait (SQLite on a free connection) is answered
        # at once by the native module, as `Gate`'s calls are (the result
        # made, or the exception raised), without a round trip through the
        # runtime's threads and without a future.
        answered = self._native.call_async(method, args, done, decode)
        if answered is not None:
            return answered[0]
        future = loop.create_future()
        waiting.append(future)
        return _settle(await future, decode)

    async def migrate(self) -> None:
        return await self._call("migrate", {}, _none)

    async def start(
        self,
        request: Request = None,
        /,
        *,
        operation: Optional[str] = None,
        tenant_id: Optional[str] = None,
        actor: Optional[ActorLike] = None,
        provider_connection_id: Optional[str] = None,
        subject: Optional[str] = None,
        params: Optional[Mapping[str, Any]] = None,
        initiator: Union[Initiator, str, None] = None,
        tenant_active: Optional[bool] = None,
    ) -> StartResult:
        # A request dict given alone, the common case, goes as it is: this
        # test is `_document`'s first, without its call (a start's hot path).
        if (type(request) is dict and operation is None and tenant_id is None and actor is None
                and provider_connection_id is None and subject is None and params is None
                and initiator is None and tenant_active is None):
            return await self._call("start", {"request": request}, _START_RESULT)
        doc = _document(request, _START, (operation, tenant_id, actor, provider_connection_id, subject, params,
                                          initiator, tenant_active))
        return await self._call("start", {"request": doc}, _START_RESULT)

    async def check(self, requests: Sequence[Mapping[str, Any]]) -> List[Union[StartResult, Error]]:
        return await self._call("check", {"requests": _requests(requests)}, _checked)

    async def start_sequence(
        self,
        request: Request = None,
        /,
        *,
        operations: Optional[Sequence[str]] = None,
        sequence: Optional[str] = None,
        tenant_id: Optional[str] = None,
        actor: Optional[ActorLike] = None,
        provider_connection_id: Optional[str] = None,
        subject: Optional[str] = None,
        params: Optional[Mapping[str, Any]] = None,
        initiator: Union[Initiator, str, None] = None,
        tenant_active: Optional[bool] = None,
    ) -> StartResult:
        doc = _document(request, _SEQUENCE, (operations, sequence, tenant_id, actor, provider_connection_id,
                                             subject, params, initiator, tenant_active))
        return await self._call("start_sequence", {"request": doc}, _START_RESULT)

    async def mark_running(self, run_id: int, fencing_token: int) -> Run:
        return await self._call(
            "mark_running", {"run_id": run_id, "fencing_token": fencing_token}, _RUN
        )

    async def heartbeat(self, run_id: int, fencing_token: int) -> Run:
        return await self._call(
            "heartbeat", {"run_id": run_id, "fencing_token": fencing_token}, _RUN
        )

    async def complete(
        self,
        completion: Request = None,
        /,
        *,
        run_id: Optional[int] = None,
        fencing_token: Optional[int] = None,
        outcome: Union[CompletionOutcome, str, None] = None,
        reason_code: Optional[str] = None,
        summary: Optional[Mapping[str, Any]] = None,
    ) -> CompletionResult:
        doc = _document(completion, _COMPLETION, (run_id, fencing_token, outcome, reason_code, summary))
        return await self._call("complete", {"completion": doc}, _COMPLETION_RESULT)

    async def cancel(self, run_id: int, reason_code: Optional[str] = None) -> CompletionResult:
        return await self._call(
            "cancel", {"run_id": run_id, "reason_code": reason_code}, _COMPLETION_RESULT
        )

    async def reap_stale(self) -> ReapResult:
        return await self._call("reap_stale", {}, _REAP_RESULT)

    async def get_run(self, run_id: int) -> Run:
        return await self._call("get_run", {"run_id": run_id}, _RUN)

    async def list_runs(
        self,
        *,
        tenant_id: Optional[str] = None,
        operation: Optional[str] = None,
        status: Union[RunStatus, str, None] = None,
        active: Optional[bool] = None,
        limit: Optional[int] = None,
    ) -> List[Run]:
        doc = _document(None, _FILTER, (tenant_id, operation, status, active, limit))
        return await self._call("list_runs", {"filter": doc}, _runs)

    async def attempts_for_run(self, run_id: int) -> List[StartAttempt]:
        return await self._call("attempts_for_run", {"run_id": run_id}, _attempts)

    async def upsert_connection(self, connection: Union[ProviderConnection, Mapping[str, Any]]) -> ProviderConnection:
        return await self._call("upsert_connection", {"connection": _document(connection)}, ProviderConnection.from_dict)

    async def get_connection(self, tenant_id: str, id: str) -> Optional[ProviderConnection]:
        return await self._call("get_connection", {"tenant_id": tenant_id, "id": id}, _connection)

    async def list_connections(self, tenant_id: str) -> List[ProviderConnection]:
        return await self._call("list_connections", {"tenant_id": tenant_id}, _connections)

    def present(self, result: Union[StartResult, Mapping[str, Any]]) -> Presentation:
        """Operator feedback for a start result. Touches no database, so it is
        a plain call, not a coroutine."""
        return self._native.call("present", {"result": result}, _PRESENTATION)

    def present_run(self, run: Union[Run, Mapping[str, Any]]) -> Presentation:
        """Run-detail wording, from the same catalogue. A plain call, as present."""
        return self._native.call("present_run", {"run": run}, _PRESENTATION)

    def metrics(self) -> Dict[str, Any]:
        """As :meth:`Gate.metrics`. A plain call, as present."""
        return self._native.call("metrics", {}, _plain)

    async def advance_clock(self, seconds: float) -> None:
        return await self._call("advance_clock", {"seconds": seconds}, _none)

    async def close(self) -> None:
        loop = asyncio.get_running_loop()
        failure = await loop.run_in_executor(None, self._native.close)
        if failure is not None:
            raise error_for(*failure)

    async def __aenter__(self) -> "AsyncGate":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
