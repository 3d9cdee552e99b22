"""Pydantic models of what the API returns, for the OpenAPI document."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


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
