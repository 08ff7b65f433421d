"""The exception hierarchy: one class per stable code of the contract."""

from __future__ import annotations

from typing import Dict, NoReturn, Optional, Type


class Error(Exception):
    """A failed startgate call. ``code`` is the stable code string; ``field``
    names the offending field of an ``InvalidRequest`` by its contract name
    (``tenant_id``, ``actor.capabilities[2]``), the same on every surface.

    Refusals (denied, scope busy, blocked) are start results, not errors.
    """

    code: str = "internal"

    def __init__(self, message: str, field: Optional[str] = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r})"


class InvalidRequest(Error):
    """A malformed request: a field is missing, too long, or of the wrong type."""

    code = "invalid_request"


class UnknownOperation(Error):
    """The operation type is not in the registry."""

    code = "unknown_operation"


class RegistryInvalid(Error):
    """The registry document is invalid; the message lists every problem with its path."""

    code = "registry_invalid"


class RunNotFound(Error):
    """No run has this id."""

    code = "run_not_found"


class InvalidTransition(Error):
    """The run cannot make this transition; a worker receiving it must stop."""

    code = "invalid_transition"


class StoreUnavailable(Error):
    """The database cannot be reached, or the gate was closed."""

    code = "store_unavailable"


class StoreTimeout(Error):
    """The database did not answer within the configured bound."""

    code = "store_timeout"


class MigrationFailed(Error):
    """Applying the schema migrations failed."""

    code = "migration_failed"


class Internal(Error):
    """A bug or an unexpected state inside startgate."""

    code = "internal"


class DriverError(Exception):
    """The database driver's error behind a store error (set as ``__cause__``)."""


ERRORS: Dict[str, Type[Error]] = {
    cls.code: cls
    for cls in (
        InvalidRequest,
        UnknownOperation,
        RegistryInvalid,
        RunNotFound,
        InvalidTransition,
        StoreUnavailable,
        StoreTimeout,
        MigrationFailed,
        Internal,
    )
}


def error_for(code: str, message: str, cause: Optional[str] = None, field: Optional[str] = None) -> Error:
    """The exception for a failure, with the driver's error as its ``__cause__``."""
    error = ERRORS.get(code, Internal)(message, field)
    if cause is not None:
        error.__cause__ = DriverError(cause)
    return error


def invalid(field: str, message: str) -> InvalidRequest:
    """An ``InvalidRequest`` worded as the core words it."""
    return InvalidRequest(f"invalid request: {field}: {message}", field)


def raise_error(code: str, message: str, cause: Optional[str] = None, field: Optional[str] = None) -> NoReturn:
    raise error_for(code, message, cause, field)
