"""The error every Turnout API answers with (``ApiError``) and how an error
quotes what the caller sent (``clip``).

Apart from ``turnout_common.web`` (which re-exports both) so that code the
workers share with the webs can name it without the workers importing Flask,
Werkzeug and jsonschema (about 10 MB in each worker).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flask import Response

# An error quotes at most this much of what the caller sent: a 5 MB email must
# not come back inside its own error message.
ECHO_LIMIT = 40
# The longest message and field name an error carries (a safety net for every
# message built from the caller's input).
MAX_MESSAGE_CHARS = 300
MAX_FIELD_CHARS = 120


def clip(value: object, limit: int = ECHO_LIMIT) -> str:
    """``value`` as text, cut to ``limit`` characters plus "…" when longer: how
    an error quotes what the caller sent."""
    text = value if isinstance(value, str) else str(value)
    return text if len(text) <= limit else f"{text[:limit]}…"


class ApiError(Exception):
    """An error the caller caused (4xx) or may retry (503), with a JSON body.

    The message and field are bounded (``MAX_MESSAGE_CHARS``, ``MAX_FIELD_CHARS``),
    whatever the caller sent."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None) -> None:
        message = clip(message, MAX_MESSAGE_CHARS)
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = None if field is None else clip(field, MAX_FIELD_CHARS)

    def to_response(self) -> tuple[Response, int]:
        from flask import jsonify

        return jsonify({"error": {"code": self.code, "message": self.message, "field": self.field}}), self.status
