# Type stubs for the native module (bindings/python/src/lib.rs).
from typing import Any, Callable, Dict, Generic, List, Optional, Tuple, Type, TypeVar, Union, overload

T = TypeVar("T")

# (code, message, cause, field)
Failure = Tuple[str, str, Optional[str], Optional[str]]

# A result object as JSON text, converted one field at a time (``document=True`` calls).
class Document:
    # A field's value: a Document for an object, Python values otherwise.
    def __getitem__(self, key: str) -> Any: ...
    # The whole object, in document order.
    def to_dict(self) -> Dict[str, Any]: ...

# A result dataclass's field not read yet: the first read decodes it from the instance's
# ``raw`` dict or ``_document`` and sets it in the instance's ``__dict__``.
class Field:
    name: str
    decode: Optional[Callable[[Any], Any]]
    def __init__(self, name: str, decode: Optional[Callable[[Any], Any]] = None) -> None: ...
    def __get__(self, instance: Any, owner: Any = None) -> Any: ...

# Makes instances of a result dataclass from a Document (or a mapping) without running its
# ``__init__``, as its ``from_dict`` does; None stays None.
class Shape(Generic[T]):
    def __init__(self, cls: Type[T]) -> None: ...
    def __call__(self, value: Any) -> T: ...

class NativeGate:
    @staticmethod
    def open(url: Any, registry: Any, registry_toml: Any, options: Any) -> Tuple[bool, Union["NativeGate", Failure]]: ...
    # The result made by ``decode`` (a Shape: from a Document), or the contract's exception raised;
    # the logger's level is taken before the call and its records delivered before it returns.
    @overload
    def call(self, method: str, args: Dict[str, Any], decode: Shape[T]) -> T: ...
    @overload
    def call(self, method: str, args: Dict[str, Any], decode: Callable[[Any], T]) -> T: ...
    @overload
    def call(self, method: str, args: Dict[str, Any]) -> Any: ...
    # (result,) made as ``call`` makes it (or its exception raised) when the call finished without
    # waiting; else None, and ``done(ok, payload)`` is called later with the result's value (a Document
    # for a Shape) or the failure.
    @overload
    def call_async(
        self, method: str, args: Dict[str, Any], done: Callable[[bool, Any], None], decode: Shape[T]
    ) -> Optional[Tuple[T]]: ...
    @overload
    def call_async(
        self, method: str, args: Dict[str, Any], done: Callable[[bool, Any], None], decode: Callable[[Any], T]
    ) -> Optional[Tuple[T]]: ...
    def close(self) -> Optional[Failure]: ...

def version() -> str: ...
# The records collected since the last call: (level, message, fields).
def take_logs() -> List[Tuple[str, str, Dict[str, Any]]]: ...
# Registers the Python layer: error_for(code, message, cause, field), the ``startgate`` logger
# and the function that logs the records waiting; the first registration stays.
def set_layer(error_for: Callable[..., BaseException], logger: Any, deliver: Callable[[], None]) -> None: ...
# Registers the converter of the contract's objects (dataclasses, enums, datetimes) to JSON
# data, applied to values at a depth below ``below``; the first registration stays.
def set_contract_values(convert: Callable[[Any, str], Any], below: int) -> None: ...
