"""Typed errors: every failure of a kuasar call is a KuasarError carrying the canonical
status code (the numbers gRPC and ttrpc put on the wire, as absl::StatusCode) and the
message the runtime wrote. Each code has its own subclass, so callers can write::

    try:
        pod.container("nope").state()
    except kuasar.NotFound as e:
        print(e.code, e.code_name, e.message)   # 5 NOT_FOUND task nope not found

A few also derive from the closest built-in exception (InvalidArgument is a ValueError,
NotFound a LookupError, DeadlineExceeded a TimeoutError, Unimplemented a
NotImplementedError), so generic handlers keep working.
"""
from __future__ import annotations

import enum
from typing import Dict, Type


class StatusCode(enum.IntEnum):
    """Canonical status codes (google.rpc.Code / absl::StatusCode)."""

    OK = 0
    CANCELLED = 1
    UNKNOWN = 2
    INVALID_ARGUMENT = 3
    DEADLINE_EXCEEDED = 4
    NOT_FOUND = 5
    ALREADY_EXISTS = 6
    PERMISSION_DENIED = 7
    RESOURCE_EXHAUSTED = 8
    FAILED_PRECONDITION = 9
    ABORTED = 10
    OUT_OF_RANGE = 11
    UNIMPLEMENTED = 12
    INTERNAL = 13
    UNAVAILABLE = 14
    DATA_LOSS = 15
    UNAUTHENTICATED = 16


class KuasarError(RuntimeError):
    """A kuasar call failed. ``code`` is the StatusCode, ``message`` the runtime's text.
    (A RuntimeError, as the process helpers raised before they had typed errors.)"""

    code: StatusCode = StatusCode.UNKNOWN

    def __init__(self, message: str = "", code: "StatusCode | int | None" = None):
        if code is not None:
            self.code = StatusCode(code)
        self.message = message
        super().__init__(message)

    @property
    def code_name(self) -> str:
        return self.code.name

    def __str__(self) -> str:
        return f"{self.code.name}: {self.message}"

    def __reduce__(self):  # picklable (pytest-xdist sends exceptions between processes)
        return (type(self), (self.message, int(self.code)))


class Cancelled(KuasarError):
    code = StatusCode.CANCELLED


class Unknown(KuasarError):
    code = StatusCode.UNKNOWN


class InvalidArgument(KuasarError, ValueError):
    code = StatusCode.INVALID_ARGUMENT


class DeadlineExceeded(KuasarError, TimeoutError):
    code = StatusCode.DEADLINE_EXCEEDED


class NotFound(KuasarError, LookupError):
    code = StatusCode.NOT_FOUND


class AlreadyExists(KuasarError):
    code = StatusCode.ALREADY_EXISTS


class PermissionDenied(KuasarError):
    code = StatusCode.PERMISSION_DENIED


class ResourceExhausted(KuasarError):
    code = StatusCode.RESOURCE_EXHAUSTED


class FailedPrecondition(KuasarError):
    code = StatusCode.FAILED_PRECONDITION


class Aborted(KuasarError):
    code = StatusCode.ABORTED


class OutOfRange(KuasarError):
    code = StatusCode.OUT_OF_RANGE


class Unimplemented(KuasarError, NotImplementedError):
    code = StatusCode.UNIMPLEMENTED


class Internal(KuasarError):
    code = StatusCode.INTERNAL


class Unavailable(KuasarError):
    code = StatusCode.UNAVAILABLE


class DataLoss(KuasarError):
    code = StatusCode.DATA_LOSS


class Unauthenticated(KuasarError):
    code = StatusCode.UNAUTHENTICATED


BY_CODE: Dict[StatusCode, Type[KuasarError]] = {
    cls.code: cls
    for cls in (Cancelled, Unknown, InvalidArgument, DeadlineExceeded, NotFound, AlreadyExists,
                PermissionDenied, ResourceExhausted, FailedPrecondition, Aborted, OutOfRange,
                Unimplemented, Internal, Unavailable, DataLoss, Unauthenticated)
}


def from_status(code: int, message: str) -> KuasarError:
    """The exception for a status (the native module raises what this returns)."""
    try:
        c = StatusCode(code)
    except ValueError:
        return Unknown(f"{message} (status code {code})")
    return BY_CODE.get(c, Unknown)(message, c)


__all__ = ["StatusCode", "KuasarError", "from_status"] + [c.__name__ for c in BY_CODE.values()]
