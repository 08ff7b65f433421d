"""startgate: the one start path for provider-backed operations.

``Gate`` (blocking) and ``AsyncGate`` (asyncio) validate, authorize, resolve
the provider connection, run readiness preflight and admit a start atomically
against its protected scope, in one database-only call, answering accepted /
deduped / scope_busy / blocked (or denied), with operator-ready wording from
``present``. Failures raise ``startgate.Error`` subclasses carrying ``.code``.
"""

from ._errors import (
    DriverError,
    Error,
    Internal,
    InvalidRequest,
    InvalidTransition,
    MigrationFailed,
    RegistryInvalid,
    RunNotFound,
    StoreTimeout,
    StoreUnavailable,
    UnknownOperation,
)
from ._gate import AsyncGate, Gate
from ._native import version
from ._types import (
    Action,
    Actor,
    CompletionOutcome,
    CompletionResult,
    Consent,
    Credential,
    Health,
    Initiator,
    Outcome,
    Presentation,
    ProviderConnection,
    ReapResult,
    Reason,
    Run,
    RunStatus,
    StartAttempt,
    StartResult,
    Tone,
)

__version__ = version()

__all__ = [
    "Action",
    "Actor",
    "AsyncGate",
    "CompletionOutcome",
    "CompletionResult",
    "Consent",
    "Credential",
    "DriverError",
    "Error",
    "Gate",
    "Health",
    "Initiator",
    "Internal",
    "InvalidRequest",
    "InvalidTransition",
    "MigrationFailed",
    "Outcome",
    "Presentation",
    "ProviderConnection",
    "ReapResult",
    "Reason",
    "RegistryInvalid",
    "Run",
    "RunNotFound",
    "RunStatus",
    "StartAttempt",
    "StartResult",
    "StoreTimeout",
    "StoreUnavailable",
    "Tone",
    "UnknownOperation",
    "version",
]
