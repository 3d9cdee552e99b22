"""Pydantic models of what the API returns, for the OpenAPI document."""

from __future__ import annotations

from functools import cache
from typing import Any

from pydantic import BaseModel


class QueryModel(BaseModel):
    """Base of query-string models.

    flask-openapi3 asks a query model for its JSON schema on every request (to find list
    parameters); the schema never changes, so it is built once per class.
    """

    @classmethod
    @cache
    def model_json_schema(cls, *args: Any, **kwargs: Any) -> dict[str, Any]:  # type: ignore[override]
        return super().model_json_schema(*args, **kwargs)


class MerchantOut(BaseModel):
    id: int
    name: str
    category: str
    lat: float
    lon: float
    address: str | None
    phone: str | None
    website: str | None
    price_level: int | None
    opening_hours: str | None
    timezone: str
    status: str
    created_at: str
    updated_at: str


class NearbyItemOut(BaseModel):
    merchant: MerchantOut
    distance_m: float


class NearbyPageOut(BaseModel):
    total: int
    ranking: str
    items: list[NearbyItemOut]
    next_cursor: str | None


class ApiKeyOut(BaseModel):
    merchant_id: int
    api_key: str


class Problem(BaseModel):
    type: str
    title: str
    status: int
    detail: str
    field: str | None = None
    errors: list[dict[str, Any]] | None = None


ERRORS: dict[str | int, Any] = {400: Problem, 401: Problem, 403: Problem, 404: Problem}
