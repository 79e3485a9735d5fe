"""Domain errors raised by services; views and APIs turn them into answers.

A service raises one of these with a message a person can act on; the API
answers ``{"error": message}`` with the status, an HTML view flashes it.
"""


class ServiceError(Exception):
    """Bad input or a refused operation (HTTP 400 unless a subclass says otherwise)."""

    status = 400

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field

    def to_dict(self) -> dict:
        out = {"error": self.message}
        if self.field:
            out["field"] = self.field
        return out


class NotFound(ServiceError):
    """The thing asked for does not exist (or the caller may not know it exists)."""

    status = 404


class Conflict(ServiceError):
    """The request clashes with the current state (duplicate, wrong state)."""

    status = 409


class Forbidden(ServiceError):
    """The caller may not do this to this object."""

    status = 403
