"""Voucher codes and signed QR payloads, as pure functions (docs/deals.md, "Claims and vouchers")."""

from __future__ import annotations

import hashlib
import math
import re
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lbs.services import voucher_codes as codes

KEY = b"unit-test-secret-key-0123456789abcdef"
OTHER_KEY = b"another-secret-key-0123456789abcdef!"
EXPIRES = datetime(2026, 12, 31, 22, 0, tzinfo=UTC)


def _payload(key: bytes = KEY, voucher_id: int = 31, merchant_id: int = 4, code: str = "7KQ2M9XD4WTR") -> str:
    return codes.qr_payload(key, voucher_id, merchant_id, EXPIRES, code)


def test_the_alphabet_is_crockford_base32() -> None:
    assert len(codes.ALPHABET) == 32
    assert len(set(codes.ALPHABET)) == 32
    assert set(codes.ALPHABET) == set("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ") - set("ILOU")


def test_a_code_carries_at_least_40_bits() -> None:
    bits = codes.CODE_LENGTH * math.log2(len(codes.ALPHABET))
    assert codes.CODE_LENGTH == 12
    assert bits == 60
    assert bits >= 40


def test_code_for_is_deterministic_per_key_and_nonce() -> None:
    nonce = codes.new_nonce()

    first = codes.code_for(KEY, nonce)

    assert first == codes.code_for(KEY, nonce)
    assert len(first) == 12
    assert set(first) <= set(codes.ALPHABET)
    assert codes.code_for(OTHER_KEY, nonce) != first


def test_nonces_are_fresh_and_fit_the_column() -> None:
    nonces = {codes.new_nonce() for _ in range(1000)}
    assert len(nonces) == 1000
    assert all(len(n) == 32 for n in nonces)


def test_ten_thousand_nonces_give_ten_thousand_codes() -> None:
    drawn = [codes.code_for(KEY, codes.new_nonce()) for _ in range(10_000)]

    assert len(set(drawn)) == len(drawn)
    assert all(len(c) == 12 and set(c) <= set(codes.ALPHABET) for c in drawn)
    # Every symbol turns up in every position: no position is stuck on a few letters.
    for position in range(12):
        assert {c[position] for c in drawn} == set(codes.ALPHABET), position


def test_display_code_groups_by_four() -> None:
    assert codes.display_code("7KQ2M9XD4WTR") == "7KQ2-M9XD-4WTR"


@pytest.mark.parametrize("nonce", ["a" * 32, "0" * 32, "f00d" * 8])
def test_normalize_code_round_trips_the_displayed_code(nonce: str) -> None:
    code = codes.code_for(KEY, nonce)
    shown = codes.display_code(code)

    assert codes.normalize_code(shown) == code
    assert codes.normalize_code(code) == code
    assert codes.normalize_code(shown.lower()) == code
    assert codes.normalize_code(" ".join(code)) == code
    assert codes.normalize_code(f"  {shown[:7]} - {shown[7:]}  ") == code


@pytest.mark.parametrize(
    ("typed", "meant"),
    [
        ("7KQ2-M9XD-4WTR", "7KQ2M9XD4WTR"),
        ("7kq2 m9xd 4wtr", "7KQ2M9XD4WTR"),
        ("IIII-LLLL-OOOO", "111111110000"),
        ("iiii llll oooo", "111111110000"),
        ("1I1l-0O0o-ABCD", "11110000ABCD"),
        ("A-B-C-D-E-F-G-H-J-K-M-N", "ABCDEFGHJKMN"),
    ],
)
def test_normalize_code_forgives_case_spaces_hyphens_and_look_alikes(typed: str, meant: str) -> None:
    assert codes.normalize_code(typed) == meant


@pytest.mark.parametrize(
    "typed",
    [
        "",
        "ABC",
        "7KQ2-M9XD-4WT",  # 11
        "7KQ2-M9XD-4WTRX",  # 13
        "7KQ2M9XD4WTR7KQ2M9XD4WTR",
        "UUUU-UUUU-UUUU",  # U is not in the alphabet
        "7KQ2-M9XD-4WTU",
        "!!!!",
        "7KQ2_M9XD_4WTR",
        "7KQ2.M9XD.4WTR",
        "7KQ2-M9XD-4WT!",
        "----",
        "ÄÖÅÄ-ÖÅÄÖ-ÅÄÖÅ",
    ],
)
def test_normalize_code_rejects_what_cannot_be_a_code(typed: str) -> None:
    assert codes.normalize_code(typed) is None


def test_code_digest_is_keyed_and_of_the_canonical_code() -> None:
    digest = codes.code_digest(KEY, "7KQ2M9XD4WTR")
    assert len(digest) == 64
    assert digest == codes.code_digest(KEY, codes.normalize_code("7kq2-m9xd-4wtr") or "")
    assert digest != codes.code_digest(KEY, "7KQ2M9XD4WTT")
    # Without the key, a copy of the database cannot be checked against guesses.
    assert digest != hashlib.sha256(b"7KQ2M9XD4WTR").hexdigest()
    assert digest != codes.code_digest(KEY + b"other", "7KQ2M9XD4WTR")


def test_merchant_voucher_keys_differ_per_merchant_and_secret() -> None:
    a = codes.merchant_voucher_key(KEY, 1)
    assert a == codes.merchant_voucher_key(KEY, 1)
    assert len(a) == 32
    assert a != codes.merchant_voucher_key(KEY, 2)
    assert a != codes.merchant_voucher_key(OTHER_KEY, 1)


def test_a_payload_has_the_documented_shape() -> None:
    payload = _payload()
    parts = payload.split(".")

    assert parts[:5] == ["LBS1", "31", "4", str(int(EXPIRES.timestamp())), "7KQ2M9XD4WTR"]
    assert len(parts) == 6
    # 128 bits in unpadded base32: 26 characters.
    assert len(parts[5]) == 26
    assert set(parts[5]) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")


def test_check_qr_payload_accepts_its_own_payload() -> None:
    checked = codes.check_qr_payload(KEY, _payload())

    assert checked == codes.CheckedPayload(31, 4, EXPIRES, "7KQ2M9XD4WTR")


def test_check_qr_payload_rejects_another_key() -> None:
    assert codes.check_qr_payload(OTHER_KEY, _payload()) is None
    merchant_4 = codes.merchant_voucher_key(KEY, 4)
    merchant_5 = codes.merchant_voucher_key(KEY, 5)
    assert codes.check_qr_payload(merchant_4, _payload(merchant_4)) is not None
    assert codes.check_qr_payload(merchant_5, _payload(merchant_4)) is None


@pytest.mark.parametrize("field", [1, 2, 3, 4])
def test_check_qr_payload_rejects_any_tampered_field(field: int) -> None:
    parts = _payload().split(".")
    replacement = {1: "32", 2: "5", 3: str(int(EXPIRES.timestamp()) + 86_400), 4: "7KQ2M9XD4WTT"}
    parts[field] = replacement[field]

    assert codes.check_qr_payload(KEY, ".".join(parts)) is None


def test_check_qr_payload_rejects_a_tampered_signature() -> None:
    payload = _payload()
    flipped = "A" if payload[-1] != "A" else "B"

    assert codes.check_qr_payload(KEY, payload[:-1] + flipped) is None
    assert codes.check_qr_payload(KEY, payload[:-1]) is None
    assert codes.check_qr_payload(KEY, payload + "A") is None


def test_check_qr_payload_rejects_another_version_even_if_signed() -> None:
    body = f"LBS2.31.4.{int(EXPIRES.timestamp())}.7KQ2M9XD4WTR"
    # Signed with the right key, so only the version prefix is wrong.
    signature = _payload().rsplit(".", 1)[1]
    resigned = codes.qr_payload(KEY, 31, 4, EXPIRES, "7KQ2M9XD4WTR").replace("LBS1", "LBS2", 1)

    assert codes.check_qr_payload(KEY, f"{body}.{signature}") is None
    assert codes.check_qr_payload(KEY, resigned) is None


@pytest.mark.parametrize(
    "payload",
    [
        "",
        ".",
        "LBS1",
        "LBS1.31.4",
        "LBS1.31.4.1798754400.7KQ2M9XD4WTR",  # no signature
        "LBS1.31.4.1798754400.SIGNATURE",  # code missing
        "LBS1.31.4.1798754400.7KQ2M9XD4WTR.EXTRA.SIGNATURE",
        "lbs1.31.4.1798754400.7KQ2M9XD4WTR.SIGNATURE",
    ],
)
def test_check_qr_payload_rejects_missing_or_extra_parts(payload: str) -> None:
    assert codes.check_qr_payload(KEY, payload) is None


def test_check_qr_payload_rejects_a_payload_missing_a_part_even_with_a_valid_signature() -> None:
    parts = _payload().split(".")
    for drop in range(1, 5):
        shorter = parts[:drop] + parts[drop + 1 :]
        assert codes.check_qr_payload(KEY, ".".join(shorter)) is None, drop


def test_qr_image_svg_and_png() -> None:
    payload = _payload()

    svg = codes.qr_image(payload, "svg")
    png = codes.qr_image(payload, "png")

    assert svg and png
    assert svg.lstrip().startswith((b"<?xml", b"<svg"))
    assert b"<svg" in svg
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert codes.qr_image(payload, "png") == png
    assert codes.qr_image(payload + "x", "png") != png


@given(st.text(alphabet=st.sampled_from("0123456789ABILOUZailouz -\x00é"), max_size=20))
def test_the_documented_pattern_accepts_exactly_the_codes_normalize_code_reads(text: str) -> None:
    assert (re.fullmatch(codes.CODE_PATTERN, text) is not None) == (codes.normalize_code(text) is not None)
