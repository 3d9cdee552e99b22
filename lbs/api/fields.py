"""fields=: which top-level fields of each item a read sends (id always), by the names its
response model gives them (lbs.api.schemas.Selectable), so a trimmed item still validates."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from pydantic import GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, core_schema

from lbs.api.schemas import MapPlaceOut, MerchantPartOut, MerchantReadOut, NearbyPlaceOut, comma_list

ALWAYS = "id"
MERCHANT_FIELDS = frozenset(MerchantPartOut.model_fields)
# Per read, the names `fields` may give: those of its item's model, in the model's order.
MERCHANT_READ = tuple(MerchantReadOut.model_fields)
MAP = tuple(MapPlaceOut.model_fields)
NEARBY = tuple(NearbyPlaceOut.model_fields)
# The week of hours costs a computation per merchant and about 1 KB: lists send it when asked.
ON_REQUEST = frozenset({"hours"})


def _split(value: object) -> object:
    return comma_list(value, "empty: name at least one field, or leave fields out")


@dataclass(frozen=True)
class FieldsOf:
    """Metadata of a `fields` query parameter: ``Annotated[list[str] | None, FieldsOf(...)]``
    takes the names in ``allowed``, comma-separated or repeated; another is a 400 that lists them."""

    allowed: tuple[str, ...]
    sent_without_it: str  # what a read sends without `fields`, for the document

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        checked = core_schema.no_info_after_validator_function(self._known, handler(source))
        return core_schema.no_info_before_validator_function(_split, checked)

    def __get_pydantic_json_schema__(
        self, schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return {
            "type": "array",
            "items": {"type": "string", "enum": list(self.allowed)},
            "description": "comma-separated top-level fields of each item to send (id always), e.g. "
            f"fields=name,hours; an unknown name is a 400. Without it: {self.sent_without_it}",
        }

    def _known(self, names: list[str] | None) -> list[str] | None:
        unknown = [n for n in names or () if n not in self.allowed]
        if unknown:
            raise ValueError(f"unknown field {unknown[0]!r}")  # the problem lists the allowed ones
        return names


def chosen(requested: list[str] | None, by_default: Collection[str]) -> frozenset[str]:
    """The fields to send: those requested (and id), or ``by_default``."""
    if requested is None:
        return frozenset(by_default)
    return frozenset(requested) | {ALWAYS}
