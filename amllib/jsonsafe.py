"""What a training script logged, made into values every JSON reader takes, both job stores included.

A diverging loss is `nan` or `inf`; Python's json writes those as the non-JSON tokens NaN and
Infinity, which SQLite's and PostgreSQL's JSON functions refuse (and so does Starlette's
JSONResponse). PostgreSQL's jsonb also refuses the NUL character. So, everywhere a value
from a run is kept or answered:

- a float that is not finite becomes the string "NaN", "Infinity" or "-Infinity";
- an integer beyond a double's range becomes "Infinity" or "-Infinity" (metrics are doubles
  in MLflow and Azure ML; the stores sort them as doubles);
- a NUL character in a string, or in a key, becomes U+FFFD (the replacement character).

Such strings are never numbers: they sort with the runs that have no value and never win "best".
"""

from __future__ import annotations

import json
import math
import sys
from typing import Any

NUL = "\x00"
REPLACEMENT = "\ufffd"
_MAX_DOUBLE = sys.float_info.max


def finite_or_text(value: float | int) -> float | int | str:
    """A number as it is when a double holds it finitely, else its name ("NaN", "Infinity", "-Infinity")."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        if -_MAX_DOUBLE <= value <= _MAX_DOUBLE:
            return value
        return "Infinity" if value > 0 else "-Infinity"
    if math.isfinite(value):
        return value
    if math.isnan(value):
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"


def clean_text(text: str) -> str:
    return text.replace(NUL, REPLACEMENT) if NUL in text else text


def json_safe(value: Any) -> Any:
    """value with every number, string and key as described above (dicts, lists and tuples walked)."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, float | int):
        return finite_or_text(value)
    if isinstance(value, dict):
        return {(clean_text(k) if isinstance(k, str) else k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(item) for item in value]
    return value


def dumps(value: Any) -> str:
    """JSON text that both job stores' JSON functions read (never NaN, Infinity or \\u0000)."""
    return json.dumps(json_safe(value), allow_nan=False)
