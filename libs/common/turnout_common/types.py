"""Type names shared by every service."""

from __future__ import annotations

from typing import Any

# A MongoDB document or a JSON object as it comes and goes.
Doc = dict[str, Any]
