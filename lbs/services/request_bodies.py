"""Bases of JSON request bodies, so that what the server accepts is what their schema says.

- JsonBody: a number field refuses true and false (pydantic's lax mode would read them as
  1 and 0; JSON Schema's number and integer do not include booleans).
- PartialUpdate (PATCH bodies): an omitted field stays as it is; NEVER_NULL fields may change
  but never become null. The Python type of such a field stays ``X | None`` (None: not
  sent), while its JSON schema says ``X``, so that a client generated from the document
  cannot send the null the server refuses.
"""

from __future__ import annotations

import types
import typing
from typing import Annotated, Any, ClassVar, Union

from pydantic import BaseModel, ConfigDict, ValidationInfo, field_validator


def _numeric(annotation: Any) -> bool:
    if typing.get_origin(annotation) is Annotated:
        return _numeric(typing.get_args(annotation)[0])
    if typing.get_origin(annotation) in (Union, types.UnionType):
        return any(_numeric(arg) for arg in typing.get_args(annotation))
    return annotation in (int, float)


class JsonBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="before")
    @classmethod
    def _no_booleans_for_numbers(cls, value: Any, info: ValidationInfo) -> Any:
        if (
            isinstance(value, bool)
            and info.field_name
            and _numeric(cls.model_fields[info.field_name].annotation)
        ):
            raise ValueError("expected a number, not true or false")
        return value


def _drop_null(schema: dict[str, Any], model: type[BaseModel]) -> None:
    for name in getattr(model, "NEVER_NULL", ()):
        prop = schema.get("properties", {}).get(name, {})
        options = [o for o in prop.pop("anyOf", []) if o.get("type") != "null"]
        if len(options) == 1:
            prop.update(options[0])
        elif options:
            prop["anyOf"] = options
        if prop.get("default", ...) is None:
            del prop["default"]


class PartialUpdate(JsonBody):
    """Base of PATCH bodies; NEVER_NULL names the fields that refuse null (each model
    checks them with a field validator, which names the field in the 400)."""

    NEVER_NULL: ClassVar[tuple[str, ...]] = ()
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, json_schema_extra=_drop_null)


def refuse_null(value: Any) -> Any:
    if value is None:
        raise ValueError("cannot be null")
    return value
