"""How values are written in an export."""

import re
from datetime import UTC, date, datetime


def iso(value):
    """Datetimes in UTC (ISO 8601, to the second); dates as YYYY-MM-DD."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat(timespec="seconds")
    if isinstance(value, date):
        return value.isoformat()
    return value


def label(choices, value) -> str:
    return str(dict(choices).get(value, value)) if value else ""


def safe_name(name: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", name or "file").strip("._") or "file"
    return cleaned[:120]
