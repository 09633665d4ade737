"""Problems as the user reads them: ``kind-registry-cache:<key>: what is allowed; the fix`` (no Pulumi here).

pydantic collects every error of one validation at once, each with a ``loc`` path; this module turns
each into our message form. Kept hand-written, because no library does it:

- the key path exactly as the messages name it (``cluster.portMappings[0].hostPort``,
  ``cache.mirrors.docker.io.shared``): pydantic's own paths carry union tags and ``[key]`` markers;
- did-you-mean for an unknown key (``extra_forbidden`` names the key, not the keys allowed there);
- secrets never echoed: pydantic puts the input into its messages; ours describe a value under
  ``credentials`` by its type only and redact a URL's userinfo.
"""

from __future__ import annotations

import difflib
import types
from collections.abc import Mapping
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, Discriminator, ValidationError
from pydantic_core import PydanticCustomError

from . import checks

#: The config namespace: every key is ``kind-registry-cache:<key>``.
NAMESPACE = "kind-registry-cache"

#: The error type of our own messages (``ctx["m"]`` holds the text after ``<key>: ``).
ERROR_TYPE = "krc"

#: Top-level keys whose values may hold a credential: never shown, described by type.
SECRET_KEYS = ("credentials",)


class SettingsError(ValueError):
    """One or more stack settings are invalid; ``problems`` lists each with its key and the fix."""

    def __init__(self, problems: list[str]) -> None:
        # A lookalike character anywhere in a message (a key, a value, a name found on the machine) is shown
        # as what it is: escaped and named (checks.escape_non_ascii).
        # And no word of a message shows a URL's userinfo, whoever wrote it (checks.redact_text): a safety net
        # under show()/show_key(), which redact each value whole.
        problems = [checks.escape_non_ascii(checks.redact_text(p)) for p in problems]
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(
            f"invalid stack configuration ({len(problems)} problem{'s' if len(problems) > 1 else ''}):\n"
            f"{lines}\n"
            f"Fix each with `pulumi config set --path {NAMESPACE}:<key> <value>` "
            f"(or edit Pulumi.<stack>.yaml); nothing was created."
        )


def fail(message: str) -> PydanticCustomError:
    """An error for a validator to raise: ``message`` is what follows ``<key>: `` (braces are kept as written)."""
    return PydanticCustomError(ERROR_TYPE, "{m}", {"m": message})


def problem(key: str, message: str) -> str:
    return f"{NAMESPACE}:{key}: {message}"


def did_you_mean(word: Any, allowed: tuple[str, ...]) -> str:
    """`` (did you mean 'x'?)`` for the allowed word closest to ``word``, or nothing."""
    close = difflib.get_close_matches(str(word), allowed, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def show_key(key: Any) -> str:
    """A key inside a message: URL userinfo removed; quoted with every control, non-ASCII (a lookalike such as
    Cyrillic ``о``) and backslash character escaped unless it is plain ASCII; ordinary spellings readable."""
    text = checks.redact(str(key))
    plain = text.isascii() and text.isprintable() and "\\" not in text and checks.control_character(text) is None
    return text if plain else checks.quoted(text) + checks.non_ascii_names(text)


#: Longer strings are cut in messages (a pasted file would bury the message).
_MAX_SHOWN_CHARACTERS = 200
#: Longer numbers are described by their size: Python refuses to print an integer of over 4300 digits.
_MAX_SHOWN_DIGITS = 40


def show(value: Any) -> str:
    """A value inside a message: strings quoted with any URL userinfo removed and non-ASCII characters escaped
    (``'d\\u043ecker.io'``), objects and lists by type, huge numbers by their size."""
    if isinstance(value, str):
        text = checks.redact(value)
        if len(text) > _MAX_SHOWN_CHARACTERS:
            return f"{checks.quoted(text[:_MAX_SHOWN_CHARACTERS])}... ({len(text)} characters){checks.non_ascii_names(text)}"
        return checks.quoted(text) + checks.non_ascii_names(text)
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 3.33 * _MAX_SHOWN_DIGITS:
        return f"a {value.bit_length()}-bit integer"
    return ascii(value) if not isinstance(value, (dict, list)) else type(value).__name__


def allowed_keys(model: type[BaseModel]) -> tuple[str, ...]:
    """The keys (aliases) a model accepts, in declaration order."""
    return tuple(field.alias or name for name, field in model.model_fields.items())


def _unwrap(tp: Any) -> tuple[Any, Discriminator | None]:
    """``tp`` without ``Annotated`` and ``Optional``; the discriminator of a tagged union, if any."""
    discriminator = None
    while True:
        origin = get_origin(tp)
        if origin is Annotated:
            args = get_args(tp)
            discriminator = next((a for a in args[1:] if isinstance(a, Discriminator)), discriminator)
            tp = args[0]
        elif origin is Union or origin is types.UnionType:
            if discriminator is not None:
                return tp, discriminator
            members = [a for a in get_args(tp) if a is not type(None)]
            tp = next((m for m in members if _is_container(m)), members[0])
        else:
            return tp, discriminator


def _is_container(tp: Any) -> bool:
    tp = get_args(tp)[0] if get_origin(tp) is Annotated else tp
    return (isinstance(tp, type) and issubclass(tp, BaseModel)) or get_origin(tp) in (dict, list, tuple)


def _tag_member(union: Any, tag: Any) -> Any:
    for member in get_args(union):
        for meta in get_args(member)[1:] if get_origin(member) is Annotated else ():
            if getattr(meta, "tag", None) == tag:
                return member
    return None


def walk(model: type[BaseModel], loc: tuple[Any, ...]) -> tuple[str, Any]:
    """The key path of ``loc`` as messages name it, and the type found at its end (a model, dict, ...)."""
    key = ""
    tp: Any = model
    rest = list(loc)
    while rest:
        tp, discriminator = _unwrap(tp)
        part = rest.pop(0)
        if discriminator is not None:
            tp = _tag_member(tp, part)  # the union tag pydantic puts into the path: not a key
            continue
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            field = next((f for n, f in tp.model_fields.items() if (f.alias or n) == part), None)
            key += f".{show_key(part)}"
            tp = _field_type(field) if field is not None else None
        elif get_origin(tp) is dict:
            key += f".{show_key(part)}"
            if rest and rest[0] == "[key]":
                rest.pop(0)
                tp = None
            else:
                tp = get_args(tp)[1]
        elif get_origin(tp) in (list, tuple):
            key += f"[{part}]"
            tp = get_args(tp)[0]
        else:
            key += f".{show_key(part)}" if not isinstance(part, int) else f"[{part}]"
            tp = None
    found, _ = _unwrap(tp) if tp is not None else (None, None)
    return key.lstrip("."), found


def _field_type(field: Any) -> Any:
    if field.metadata:
        return Annotated[(field.annotation, *field.metadata)]
    return field.annotation


def problems_from(error: ValidationError, model: type[BaseModel], *, prefix: str = "") -> list[str]:
    """Each pydantic error of validating ``model`` as ``kind-registry-cache:<prefix><key>: <message>``."""
    problems: list[str] = []
    for item in error.errors(include_url=False):
        loc = tuple(item["loc"])
        kind = item["type"]
        if kind == "extra_forbidden":
            key, _ = walk(model, loc)
            _, parent = walk(model, loc[:-1])
            allowed = allowed_keys(parent) if isinstance(parent, type) and issubclass(parent, BaseModel) else ()
            message = f"unknown key{did_you_mean(loc[-1], allowed)}; allowed keys: {', '.join(allowed)}"
        else:
            key, found = walk(model, loc)
            secret = (prefix + key).split(".")[0].split("[")[0] in SECRET_KEYS
            got = type(item["input"]).__name__ if secret else show(item["input"])
            if kind == ERROR_TYPE:
                message = str(item["ctx"]["m"])
            elif kind in ("model_type", "model_attributes_type", "dict_type") and isinstance(found, type):
                message = f"must be an object with keys {', '.join(allowed_keys(found))}; got {got}"
            elif kind in ("model_type", "dict_type"):
                message = f"must be an object; got {got}"
            elif kind == "missing":
                message = "is required"
            else:
                message = f"{item['msg'][0].lower()}{item['msg'][1:]}; got {got}"
        problems.append(problem(f"{prefix}{key}".strip(".") or prefix.strip("."), message))
    return problems


def as_mapping(value: Any) -> Any:
    """``None`` (a key not set) as an empty object; anything else unchanged for the model to judge."""
    return {} if value is None else dict(value) if isinstance(value, Mapping) else value
