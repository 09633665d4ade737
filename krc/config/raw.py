"""Reading a stack config value's JSON text safely: no traceback, however deep or large (no Pulumi here).

Pulumi hands the program each top-level key's value as JSON text. Three kinds of value would end in a Python
traceback, some only once resources were registered, and are refused here with the key instead (issue #18):

- nesting deeper than :data:`MAX_DEPTH` (Python's JSON reader, pydantic and the Helm values merge recurse; a few
  thousand levels exceed the interpreter's recursion limit);
- integers beyond ±2^53: Pulumi sends every number to the engine as a protobuf ``double``
  (google.protobuf.Value.number_value), so a larger one is changed on the way or, past 1e308, fails to
  convert; Python also refuses to read or print an integer of over 4300 digits (``sys.int_info``);
- ``NaN`` and ``Infinity``, which Python's reader accepts and no JSON (nor YAML-to-JSON) value means.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

#: Deepest nesting accepted: far more than any Helm values file (Kubernetes objects nest about 12 deep).
MAX_DEPTH = 32
#: The largest integer a float64 holds exactly.
MAX_SAFE_INTEGER = 2**53
#: Digits read as an integer at all; longer ones are described, never converted.
_MAX_DIGITS = 40


@dataclass(frozen=True)
class _Unreadable:
    """A number the reader kept as text: too many digits, or NaN/Infinity."""

    text: str


def loads(text: str) -> tuple[Any, list[tuple[str, str]]]:
    """``text`` parsed as JSON (or kept as the string it is), and ``(path, why)`` for each value refused."""
    try:
        value = json.loads(
            text,
            parse_int=lambda digits: int(digits) if len(digits.lstrip("-")) <= _MAX_DIGITS else _Unreadable(digits),
            parse_constant=_Unreadable,
        )
    except json.JSONDecodeError:
        return text, []
    except RecursionError:
        return None, [("", f"is nested more than {MAX_DEPTH} levels deep; flatten it")]
    return value, problems(value)


def problems(value: Any) -> list[tuple[str, str]]:
    """``(path, why)`` for each part of ``value`` no stack setting can hold (walked without recursion)."""
    found: list[tuple[str, str]] = []
    todo: list[tuple[str, Any, int]] = [("", value, 0)]
    while todo:
        path, item, depth = todo.pop()
        if depth > MAX_DEPTH:
            found.append((path, f"is nested more than {MAX_DEPTH} levels deep; flatten it"))
            continue
        if isinstance(item, dict):
            todo.extend((f"{path}.{key}" if path else str(key), child, depth + 1) for key, child in item.items())
        elif isinstance(item, list):
            todo.extend((f"{path}[{index}]", child, depth + 1) for index, child in enumerate(item))
        elif isinstance(item, _Unreadable):
            found.append((path, _number_problem(item.text)))
        elif isinstance(item, bool):
            continue
        elif isinstance(item, int) and abs(item) > MAX_SAFE_INTEGER:
            found.append((path, _number_problem(str(item))))
        elif isinstance(item, float) and not math.isfinite(item):
            found.append((path, _number_problem(repr(item))))
    return sorted(found)


def _number_problem(text: str) -> str:
    digits = text.lstrip("-")
    shown = f"a number of {len(digits)} digits" if digits.isdigit() else repr(text)
    return (
        f"is {shown}, which Pulumi cannot pass on unchanged (numbers travel as 64-bit floats: at most "
        f"{MAX_SAFE_INTEGER} in size, and finite); write it as a string if it is text"
    )
