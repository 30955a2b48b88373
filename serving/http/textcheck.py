"""The one check every text a client sends goes through, and the scrub for stored text.

A JSON body may carry `"\\ud83d"`: a lone UTF-16 surrogate, which is not a character and
cannot be encoded as UTF-8, so it could never be stored or sent back. NUL cannot be
shown or searched reliably either. Both are refused at the door, by field name, for
every string of every request model (nested metadata and inputs included) and for ids.
Rows stored before this check existed are read tolerantly (`scrub`), so one bad row can
never turn a listing into a 500.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic_core import PydanticCustomError

MAX_INT64 = 2**63 - 1  # SQLite integers (offsets, event numbers) are signed 64-bit
ID_MAX_LENGTH = 128  # one limit for thread ids, wherever they arrive

_SURROGATE = re.compile("[\ud800-\udfff]")
_ID_FORBIDDEN = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff/]")


def text_problem(text: str) -> str | None:
    """Why `text` cannot be accepted, or None."""
    if _SURROGATE.search(text):
        return "contains a lone UTF-16 surrogate (an unpaired \\ud800-\\udfff escape)"
    if "\x00" in text:
        return "contains a NUL character"
    return None


def id_problem(value: str) -> str | None:
    """Why `value` cannot be a thread id, or None."""
    if not value or value.strip() != value:
        return "must be non-empty without leading or trailing spaces"
    if len(value) > ID_MAX_LENGTH:
        return f"is longer than {ID_MAX_LENGTH} characters"
    if _ID_FORBIDDEN.search(value):
        return "contains a control character, a surrogate or '/'"
    return None


def _walk(value: Any, path: str) -> tuple[str, str] | None:
    if isinstance(value, str):
        problem = text_problem(value)
        return (path or "body", problem) if problem else None
    if isinstance(value, dict):
        for key, item in value.items():
            here = f"{path}.{key}" if path else str(key)
            if isinstance(key, str) and (problem := text_problem(key)):
                return here, f"has a key that {problem}"
            if found := _walk(item, here):
                return found
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            if found := _walk(item, f"{path}.{i}" if path else str(i)):
                return found
    return None


def check_texts(data: Any) -> Any:
    """Raise a validation error naming the first string field that cannot be stored."""
    found = _walk(data, "")
    if found is not None:
        field, problem = found
        raise PydanticCustomError(
            "invalid_text",
            "{problem}; send valid Unicode text",
            {"field": field, "problem": problem},
        )
    return data


def scrub(value: Any) -> Any:
    """`value` with lone surrogates replaced by U+FFFD (for rows stored before the check)."""
    if isinstance(value, str):
        return _SURROGATE.sub("\ufffd", value) if _SURROGATE.search(value) else value
    if isinstance(value, dict):
        return {scrub(k): scrub(v) for k, v in value.items()}
    if isinstance(value, list):
        return [scrub(v) for v in value]
    return value
