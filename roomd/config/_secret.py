"""The one type that holds a secret value, so that printing settings can never leak one."""

from __future__ import annotations

import hmac
from typing import Any

from pydantic import GetCoreSchemaHandler
from pydantic_core import core_schema

_MASK = "**********"


class Secret:
    """A secret read from a file or an environment variable.

    ``str()``, ``repr()``, f-strings and pydantic serialisation all show a fixed mask, so a
    ``Settings`` object (or an exception carrying one) can be logged without thinking about it.
    Only :meth:`reveal` returns the value; call it at the point of use (the Authorization header,
    msal's ``client_credential``, the HMAC key), never earlier.
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if not isinstance(value, str):
            raise TypeError("Secret holds a str")
        self._value = value

    def reveal(self) -> str:
        """The secret itself. Keep the result out of logs, metrics and exception messages."""
        return self._value

    def __str__(self) -> str:
        return _MASK

    def __repr__(self) -> str:
        return f"Secret({_MASK!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        # constant time, so comparing a webhook secret never leaks its prefix through timing
        return hmac.compare_digest(self._value.encode(), other._value.encode())

    def __hash__(self) -> int:
        return hash((Secret, self._value))

    def __copy__(self) -> Secret:
        return self  # immutable

    def __deepcopy__(self, memo: dict[int, Any]) -> Secret:
        return self

    def __reduce__(self) -> Any:
        # refuse pickling: a pickle is a way for the value to end up on disk or in a queue
        raise TypeError("a Secret cannot be pickled")

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: type[Any], handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        """Accept only Secret instances; dump as the mask (``model_dump_json`` stays safe)."""
        return core_schema.is_instance_schema(
            cls,
            serialization=core_schema.plain_serializer_function_ser_schema(
                lambda _value: _MASK, when_used="always"
            ),
        )
