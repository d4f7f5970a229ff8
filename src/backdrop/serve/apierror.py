"""The one exception a request handler raises to answer with an error: an HTTP status and a
one-line message that names the problem (and the fix, where there is one)."""

from __future__ import annotations

from typing import Dict, Optional


class ApiError(Exception):
    def __init__(self, status: int, message: str, headers: Optional[Dict[str, str]] = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}
