"""Voucher codes (Crockford base32, derived from a nonce) and signed QR payloads.

A code is HMAC(secret key, nonce) cut to 60 bits: the database stores the nonce and a
keyed digest of the code (for lookups), so a copy of it reveals no code. A QR payload is signed with the
merchant's voucher key, so that a counter device holding that key can check it offline.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated

import segno
from pydantic import AfterValidator, Field

from lbs.text import WithPattern

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford: no I, L, O, U
CODE_LENGTH = 12  # 60 bits
CODE_FORMAT = "12 characters of 0-9 and A-Z except I, L, O, U (hyphens and spaces ignored)"
_READ_AS = str.maketrans({"I": "1", "L": "1", "O": "0"})
# What normalize_code accepts, as the OpenAPI document states it (tests check they agree).
CODE_PATTERN = "^[- ]*(?:[0-9A-TV-Za-tv-z][- ]*){12}$"
QR_VERSION = "LBS1"


def new_nonce() -> str:
    return secrets.token_hex(16)


def code_for(secret_key: bytes, nonce: str) -> str:
    digest = hmac.new(secret_key, b"voucher-code:" + nonce.encode(), hashlib.sha256).digest()
    return crockford(int.from_bytes(digest[:8], "big") >> 4)  # 60 bits


def crockford(value: int) -> str:
    """The low 60 bits of ``value`` as a code of CODE_LENGTH characters of ALPHABET."""
    return "".join(ALPHABET[(value >> (5 * i)) & 31] for i in reversed(range(CODE_LENGTH)))


def display_code(code: str) -> str:
    """'7KQ2M9XD4WTR' -> '7KQ2-M9XD-4WTR', for reading aloud."""
    return "-".join(code[i : i + 4] for i in range(0, CODE_LENGTH, 4))


def normalize_code(text: str) -> str | None:
    """The canonical code a person meant, or None if it cannot be one."""
    code = text.upper().replace("-", "").replace(" ", "").translate(_READ_AS)
    if len(code) != CODE_LENGTH or any(c not in ALPHABET for c in code):
        return None
    return code


def _a_code(text: str) -> str:
    if normalize_code(text) is None:
        raise ValueError(f"expected {CODE_FORMAT}")
    return text


# A request field holding a code someone typed (a voucher's, a transfer's).
CodeText = Annotated[str, AfterValidator(_a_code), WithPattern(CODE_PATTERN), Field(description=CODE_FORMAT)]


def code_digest(secret_key: bytes, code: str) -> str:
    """What the database keeps of a code, to look it up: keyed, so a copy of it cannot be brute-forced."""
    return hmac.new(secret_key, b"voucher-lookup:" + code.encode(), hashlib.sha256).hexdigest()


def merchant_voucher_key(secret_key: bytes, merchant_id: int) -> bytes:
    return hmac.new(secret_key, f"merchant-voucher-key:{merchant_id}".encode(), hashlib.sha256).digest()


def _signature(key: bytes, body: str) -> str:
    mac = hmac.new(key, body.encode(), hashlib.sha256).digest()[:16]
    return base64.b32encode(mac).decode().rstrip("=")


def qr_payload(key: bytes, voucher_id: int, merchant_id: int, expires_at: datetime, code: str) -> str:
    """LBS1.<voucher>.<merchant>.<expires unix>.<code>.<signature>; key = the merchant's voucher key."""
    body = f"{QR_VERSION}.{voucher_id}.{merchant_id}.{int(expires_at.timestamp())}.{code}"
    return f"{body}.{_signature(key, body)}"


@dataclass(frozen=True)
class CheckedPayload:
    voucher_id: int
    merchant_id: int
    expires_at: datetime
    code: str


def check_qr_payload(key: bytes, payload: str) -> CheckedPayload | None:
    """What a counter device does offline: None unless the signature is the merchant key's."""
    body, _, signature = payload.rpartition(".")
    parts = body.split(".")
    if len(parts) != 5 or parts[0] != QR_VERSION:
        return None
    if not hmac.compare_digest(_signature(key, body), signature):
        return None
    _, voucher_id, merchant_id, expires, code = parts
    return CheckedPayload(int(voucher_id), int(merchant_id), datetime.fromtimestamp(int(expires), UTC), code)


def qr_image(payload: str, kind: str) -> bytes:
    """The payload as a QR code: kind 'svg' or 'png'."""
    out = io.BytesIO()
    segno.make(payload, error="m").save(out, kind=kind, scale=8, border=4)
    return out.getvalue()
