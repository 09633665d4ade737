"""The configuration every stack-config model shares (no Pulumi here)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel


class ConfigModel(BaseModel):
    """A part of the stack configuration as written in ``Pulumi.<stack>.yaml``.

    Keys are the stack's camelCase spellings (``controlPlanes``), unknown keys are refused
    (``extra="forbid"``; :mod:`krc.config.errors` adds did-you-mean), values are frozen, and pydantic
    reports every error of one validation at once.
    """

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        alias_generator=to_camel,
        populate_by_name=True,
        hide_input_in_errors=False,
        use_attribute_docstrings=True,
    )
