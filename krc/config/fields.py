"""Constrained field types shared by the models: integers, booleans, whole-string patterns (no Pulumi here).

pydantic does the typing, the ranges in the JSON Schema, and collects every error; the checks below stay
ours because pydantic's lax mode accepts what the stack must not: ``True`` and ``3.0`` for an integer,
``"yes"``/``"1"`` for a boolean, Unicode digits (``"٣"``), and a pattern *search* that lets a trailing
newline through. ``pulumi config set --path`` stores numbers and booleans as text, so ``"3"`` and
``"true"`` (exactly those spellings, surrounding blanks aside) are accepted as today.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BeforeValidator, WithJsonSchema

from . import checks, imageref
from .errors import fail, show

_INTEGER = re.compile(r"[+-]?[0-9]+", re.ASCII)


def to_integer(value: Any, low: int, high: int) -> int:
    """``value`` as an integer from ``low`` to ``high``; raises our message otherwise."""
    if isinstance(value, str) and _INTEGER.fullmatch(value.strip()):
        if len(value.strip().lstrip("+-")) > 20:  # int() refuses over 4300 digits; no setting needs 20
            raise fail(f"must be an integer from {low} to {high}; got a number of {len(value.strip().lstrip('+-'))} digits")
        value = int(value)  # `pulumi config set --path` stores numbers given on the CLI as text
    if isinstance(value, bool) or not isinstance(value, int):
        raise fail(f"must be an integer from {low} to {high}; got {show(value)}")
    if not low <= value <= high:
        raise fail(f"must be an integer from {low} to {high}; got {value}")
    return value


def integer_schema(low: int, high: int, description: str | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {
        "anyOf": [
            {"type": "integer", "minimum": low, "maximum": high},
            {"type": "string", "pattern": r"^[+-]?[0-9]+$", "description": "as stored by `pulumi config set --path`"},
        ]
    }
    if description:
        schema["description"] = description
    return schema


def Integer(low: int, high: int) -> Any:  # noqa: N802 - a type factory
    """An integer from ``low`` to ``high``, also given as its decimal text."""
    return Annotated[int, BeforeValidator(lambda v: to_integer(v, low, high)), WithJsonSchema(integer_schema(low, high))]


def to_boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"  # `pulumi config set --path` stores CLI values as text
    raise fail(f"must be true or false; got {show(value)}")


Boolean = Annotated[
    bool,
    BeforeValidator(to_boolean),
    WithJsonSchema({"anyOf": [{"type": "boolean"}, {"type": "string", "enum": ["true", "false"]}]}),
]


def text_check(pattern: re.Pattern[str], allowed: str):
    """A validator: a clean string matching all of ``pattern``, else ``must be <allowed>; got <value>``."""

    def check(value: Any) -> str:
        if checks.text_problem(value, pattern) is not None:
            raise fail(f"must be {allowed}; got {show(value)}")
        return value

    return check


def Text(pattern: re.Pattern[str], allowed: str, *, schema_pattern: str | None = None) -> Any:  # noqa: N802
    """A string matching all of ``pattern`` (ASCII, no control characters)."""
    schema = {"type": "string", "pattern": f"^(?:{schema_pattern or pattern.pattern})$"}
    return Annotated[str, BeforeValidator(text_check(pattern, allowed)), WithJsonSchema(schema)]


def short_repository(value: str) -> str:
    """An image reference whose repository a registry accepts (distribution's 255 characters)."""
    why = imageref.repository_length_problem(value)
    if why:
        raise fail(f"{why}; got {show(value)}")
    return value
