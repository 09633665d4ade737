"""Which values came from config set with ``--secret``, and whether a value holds one (no Pulumi here).

Pulumi tells a program only which top-level keys hold a secret: a key whose object has one ``secure`` value
anywhere is listed whole (pulumi sdk/go/common/resource/config/object.go ``Secure()`` is true when any nested
value is; ``Map.SecureKeys`` in map.go lists such keys; the Python SDK's ``pulumi.runtime.is_config_secret``
reads that list). Which value inside was the secret is not said, so every value of such a key is treated as
one: its leaves (strings and numbers; mapping keys are not secret: the stack file shows them in plain text),
each in the spellings the program writes (blanks and a trailing ``/`` stripped, lower-cased, JSON- and
shell-quoted), and everything the settings derive from the key — what :func:`taint` finds that the same
configuration without that key does not have (the gateway address of a subnet, node and container names,
a ``~`` path expanded).

:class:`Taint` then answers, for any value the program is about to put into a resource or an output, whether
it holds one of them; the program makes such a value a Pulumi secret (program/secrets.py). A yes/no (a boolean)
and the number of things (how many workers) show in what is created and cannot be hidden.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import re
import shlex
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Taint:
    """The secret values, as text and as numbers; empty when no key other than ``credentials`` is secret."""

    texts: frozenset[str] = frozenset()
    numbers: frozenset[int | float] = frozenset()
    #: The top-level keys whose values these are.
    keys: tuple[str, ...] = ()
    _numbers_pattern: re.Pattern[str] | None = field(default=None, compare=False, repr=False)

    def __bool__(self) -> bool:
        return bool(self.texts or self.numbers)

    def touches(self, value: Any) -> bool:
        """Whether ``value`` (text, number, mapping, sequence, or an object's attributes) holds a secret value."""
        todo, seen = [value], 0
        while todo:
            item = todo.pop()
            seen += 1
            if isinstance(item, str):
                if any(text in item for text in self.texts) or self._number_in(item):
                    return True
            elif isinstance(item, bool) or item is None:
                continue
            elif isinstance(item, (int, float)):
                if item in self.numbers:
                    return True
            elif isinstance(item, Mapping):
                todo.extend(str(k) for k in item.keys())
                todo.extend(item.values())
            elif isinstance(item, (list, tuple, set, frozenset)):
                todo.extend(item)
            elif hasattr(item, "__dict__"):
                todo.extend(vars(item).values())
            else:
                todo.append(str(item))
        return False

    def _number_in(self, text: str) -> bool:
        if not self.numbers:
            return False
        pattern = self._numbers_pattern
        if pattern is None:
            alternatives = "|".join(sorted((re.escape(_number_text(n)) for n in self.numbers), key=len, reverse=True))
            pattern = re.compile(rf"(?<![0-9.])(?:{alternatives})(?![0-9])")
            object.__setattr__(self, "_numbers_pattern", pattern)
        return pattern.search(text) is not None


def _number_text(number: int | float) -> str:
    return str(int(number)) if isinstance(number, float) and number.is_integer() else str(number)


def leaves(value: Any) -> tuple[set[str], set[int | float]]:
    """The strings and numbers in ``value`` (mapping values, list items), walked without recursion."""
    texts: set[str] = set()
    numbers: set[int | float] = set()
    todo = [value]
    while todo:
        item = todo.pop()
        if isinstance(item, str):
            texts.add(item)
        elif isinstance(item, bool) or item is None:
            continue
        elif isinstance(item, (int, float)):
            numbers.add(item)
        elif isinstance(item, Mapping):
            todo.extend(item.values())
        elif isinstance(item, (list, tuple)):
            todo.extend(item)
    return texts, numbers


def spellings(text: str) -> set[str]:
    """``text`` as the program may write it: stripped, without a trailing '/', lower-cased, JSON- or sh-quoted."""
    forms = {text, text.strip(), text.rstrip("/"), text.strip().rstrip("/").rstrip("."), text.lower(), text.strip().lower()}
    forms.add(json.dumps(text)[1:-1])
    forms.add(shlex.quote(text))
    return {form for form in forms if form}


def values_of(objects: Iterable[Any]) -> set[str | int | float]:
    """Every string and number the settings objects hold or derive (addresses as text), for :func:`taint`."""
    found: set[str | int | float] = set()
    todo = list(objects)
    while todo:
        item = todo.pop()
        if isinstance(item, str):
            found.add(item)
        elif isinstance(item, bool) or item is None:
            continue
        elif isinstance(item, (int, float)):
            found.add(item)
        elif isinstance(item, (ipaddress.IPv4Network, ipaddress.IPv4Address)):
            found.add(str(item))
        elif dataclasses.is_dataclass(item) and not isinstance(item, type):
            todo.extend(getattr(item, f.name) for f in dataclasses.fields(item))
            todo.extend(_derived_names(item))
            if hasattr(item, "start") and hasattr(item, "end"):  # a MetalLB range: "first-last" too
                found.add(str(item))
        elif isinstance(item, Mapping):
            todo.extend(item.values())
        elif isinstance(item, (list, tuple, set, frozenset)):
            todo.extend(item)
    return found


def _derived_names(item: Any) -> list[Any]:
    """What a settings object computes rather than holds: container and volume names, ports, gateways, records."""
    names: list[Any] = []
    if hasattr(item, "container_names") and callable(item.container_names):
        names += item.container_names()
    if hasattr(item, "local_mirrors"):
        for mirror in item.local_mirrors:
            names += [item.container_name(mirror), item.volume_name(mirror), item.host_port(mirror), mirror.slug]
    if hasattr(item, "gateway") and isinstance(getattr(item, "gateway", None), ipaddress.IPv4Address):
        names.append(item.gateway)
    if hasattr(item, "cluster_record") and isinstance(getattr(type(item), "cluster_record", None), property):
        names.append(item.cluster_record)
    return names


def taint(
    raw: Mapping[str, Any],
    secret_keys: Iterable[str],
    parse: Callable[[Mapping[str, Any]], list[Any]] | None = None,
) -> Taint:
    """The secret values of a stack: every value under each of ``secret_keys`` and what derives from it.

    :param raw: top-level key -> value as read from the stack (not set: absent or ``None``).
    :param parse: settings objects of a configuration (``raw`` or one without a key); ``None`` skips derivation.
        It may raise: a configuration that does not validate without a key derives nothing for it.
    """
    keys = tuple(k for k in secret_keys if raw.get(k) is not None)
    texts: set[str] = set()
    numbers: set[int | float] = set()
    for key in keys:
        found_texts, found_numbers = leaves(raw[key])
        for text in found_texts:
            texts |= spellings(text)
        numbers |= found_numbers
    if parse is not None and keys:
        try:
            everything = values_of(parse(raw))
        except Exception:  # noqa: BLE001 - an invalid configuration is refused elsewhere; nothing to derive
            everything = set()
        for key in keys:
            try:
                without = values_of(parse({k: v for k, v in raw.items() if k != key}))
            except Exception:  # noqa: BLE001 - see above
                continue
            for item in everything - without:
                if isinstance(item, str):
                    texts.add(item)
                else:
                    numbers.add(item)
    return Taint(frozenset(t for t in texts if t), frozenset(numbers), keys)
