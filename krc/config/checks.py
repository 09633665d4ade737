"""Grammar checks the pydantic models call: whole-string matches, URLs parsed defensively (no Pulumi here).

Kept hand-written, on purpose, next to pydantic:

- pydantic's ``pattern=`` constraint is a *search* in the Rust regex engine, and its ``str`` accepts any
  control character; these checks match the whole value and refuse control and invisible format characters
  (a trailing newline would make nodes bypass the caches, issue #10).
- pydantic's ``HttpUrl``/``AnyUrl`` normalise a URL (adding a trailing ``/``, punycoding, lower-casing) and
  echo the whole input, userinfo included, in their error; :func:`parse_url` never changes the value (it is
  written literally into hosts.toml) and describes a problem without echoing credentials (:func:`redact`).

Every check returns a problem text (without the key) or ``None``, and never raises: the validators in
:mod:`krc.config` turn each text into ``kind-registry-cache:<key>: <text>``.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from dataclasses import dataclass
from typing import Any
from urllib.parse import SplitResult, urlsplit

#: A DNS name (lower-case, as containerd names certs.d folders), optionally with a port.
HOSTNAME = re.compile(
    r"(?=.{1,253}(:|$))[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*(:[0-9]{1,5})?",
    re.ASCII,
)


def control_character(value: str) -> str | None:
    """The first control or invisible format character in ``value`` (newline, NUL, ESC, zero-width ...), if any."""
    for char in value:
        if unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp"):
            return char
    return None


def text_problem(value: Any, pattern: re.Pattern[str] | None = None) -> str | None:
    """Why ``value`` is not a clean string matching all of ``pattern`` (``re.fullmatch``), or ``None``.

    ``re.match`` with ``$`` accepts a trailing newline; ``fullmatch`` does not.
    """
    if not isinstance(value, str):
        return "not a string"
    char = control_character(value)
    if char is not None:
        return f"contains the control character {char!r}"
    if pattern is not None and pattern.fullmatch(value) is None:
        return "does not match"
    return None


def port_problem(text: str) -> str | None:
    """Why a ``host:port`` suffix is out of range, or ``None``."""
    if ":" not in text:
        return None
    port = text.rsplit(":", 1)[1]
    if not port.isascii() or not port.isdigit() or not 1 <= int(port) <= 65535:
        return f"has the port {port!r}; a port is a number from 1 to 65535"
    return None


@dataclass(frozen=True)
class Url:
    """A URL that passed :func:`parse_url`."""

    text: str
    parts: SplitResult

    @property
    def host(self) -> str:
        """Host name (lower-case) or IP address, without brackets."""
        return self.parts.hostname or ""


#: ``@`` that starts an image digest (``nginx@sha256:<hex>``), not the end of a URL's userinfo.
_DIGEST_AT = re.compile(r"@[a-z0-9]+(?:[+._-][a-z0-9]+)*:[0-9a-fA-F]{32,}")

#: A URL's scheme and its "//" at the very start (a "://" later on may be inside a password).
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
#: What replaces the user name and password of anything that looks like a URL.
REDACTED = "<credentials removed>"


def redact(value: str) -> str:
    """``value`` with the userinfo of anything URL-like replaced, so a message can show where it points.

    One value is one URL as far as redaction goes: everything from after its scheme's ``://`` (or from its
    start when it does not start with one: ``me:pw@host``, ``https:/me:pw@host``) up to its *last* ``@`` goes, so a
    password holding ``/``, ``?``, ``#``, ``@`` or a space is never cut short — a URL parser would end the
    userinfo at the first of them and show the rest. An ``@`` that starts an image digest
    (``nginx@sha256:...``) is not userinfo. Over-redacting a value that only looks like a URL is accepted.
    """
    digests = {m.start() for m in _DIGEST_AT.finditer(value)}
    at = max((i for i, char in enumerate(value) if char == "@" and i not in digests), default=-1)
    if at < 0:
        return value
    scheme = _SCHEME.match(value)
    start = scheme.end() if scheme is not None and scheme.end() <= at else 0
    return value[:start] + REDACTED + value[at:]


def redact_text(text: str) -> str:
    """Free text (a tool's error output) with every whitespace-separated word passed through :func:`redact`."""
    return "".join(redact(word) for word in re.split(r"(\s+)", text))


def escape_non_ascii(text: str) -> str:
    """``text`` with every non-ASCII character written as ``\\uXXXX``, and what the first few are, named.

    A lookalike (Cyrillic ``о`` in ``dоcker.io``) then reads as what it is: ``d\\u043ecker.io (\\u043e is
    CYRILLIC SMALL LETTER O)``.
    """
    if text.isascii():
        return text
    return "".join(_escape(char) for char in text) + non_ascii_names(text)


def quoted(text: str) -> str:
    """``text`` quoted as Python would (``repr``), with every non-ASCII character as ``\\uXXXX``."""
    return "".join(_escape(char) for char in repr(text))


def non_ascii_names(text: str) -> str:
    """`` (\\u043e is CYRILLIC SMALL LETTER O)`` for the first few non-ASCII characters of ``text``, or ``""``."""
    found = list(dict.fromkeys(char for char in text if not char.isascii()))
    if not found:
        return ""
    names = ", ".join(f"{_escape(char)} is {unicodedata.name(char, 'an unnamed character')}" for char in found[:3])
    return f" ({names}{', ...' if len(found) > 3 else ''})"


def _escape(char: str) -> str:
    if char.isascii():
        return char
    return f"\\u{ord(char):04x}" if ord(char) < 0x10000 else f"\\U{ord(char):08x}"


def parse_url(value: Any, schemes: tuple[str, ...], *, userinfo: str = "forbidden") -> tuple[Url | None, str | None]:
    """Parse ``value`` as a URL with one of ``schemes``; return it or the problem.

    :param userinfo: ``"forbidden"`` (credentials never belong in a URL), or ``"user"`` (a user name
        without a password is allowed, as in ``ssh://user@host``).
    """
    if not isinstance(value, str):
        return None, "is not a string"
    char = control_character(value)
    if char is not None or " " in value:
        return None, f"contains {'a space' if char is None else f'the control character {char!r}'}"
    if not value.isascii():
        return None, "contains non-ASCII characters; write an internationalised host name in its xn-- form"
    try:
        parts = urlsplit(value)
        port = parts.port  # raises ValueError for a port that is no number or out of 0-65535
        hostname = parts.hostname
    except ValueError as error:
        return None, f"is not a valid URL ({error})"
    if parts.scheme not in schemes:
        return None, f"must start with {' or '.join(s + '://' for s in schemes)}"
    has_password = parts.password is not None
    if parts.username is not None and (userinfo == "forbidden" or has_password):
        return None, "must not carry credentials (user name or password) in the URL"
    if not hostname:
        return None, "has no host"
    if port is not None and not 1 <= port <= 65535:
        return None, f"has the port {port}; a port is a number from 1 to 65535"
    if not _host_ok(hostname, bracketed="[" in parts.netloc):
        return None, (
            f"has the host {hostname!r}, which is neither a DNS name nor an IP address (a name needs a letter: "
            "Go's resolver looks up no name of digits and dots alone)"
        )
    return Url(value, parts), None


def go_resolvable(name: str) -> bool:
    """Whether Go's resolver (the registry's, containerd's, the Docker CLI's) will look ``name`` up at all.

    Go refuses a name made only of digits and dots that is no IPv4 address (``123.456``, ``1.2.3``) with "no
    such host" before asking DNS: ``isDomainName`` requires a letter, ``-`` or ``_`` (go1.26
    src/net/dnsclient.go, ``nonNumeric``). The rest of its rules (labels of 1-63 characters, 253 in all, no
    leading or trailing ``-``) are :data:`HOSTNAME`'s.
    """
    host = name.rsplit(":", 1)[0] if name.count(":") == 1 else name
    try:
        ipaddress.IPv4Address(host)
        return True
    except ValueError:
        return HOSTNAME.fullmatch(name) is not None and any(c.isalpha() or c == "-" for c in host)


def _host_ok(hostname: str, *, bracketed: bool) -> bool:
    if bracketed:
        try:
            return ipaddress.ip_address(hostname).version == 6
        except ValueError:
            return False
    return go_resolvable(hostname)
