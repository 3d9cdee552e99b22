"""``lbs seed synthetic``: a synthetic city with its people, deals, vouchers, events and
reviews, written through the bulk path (``seed.bulk``) in one transaction.

Merchants and people carry a source ref (``synthetic:<seed>/m<i>``, ``synthetic:<seed>/u<i>``),
so loading the same seed twice is refused rather than doubled. Vouchers get fresh random
nonces: their codes are secrets, so only everything else is determined by the seed.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

import numpy as np
from sqlalchemy import Table, select, text
from sqlalchemy.orm import Session

from lbs.categories import CATEGORY_CODES
from lbs.geo.timezones import timezone_at
from lbs.models import Deal, Event, Merchant, Review, User, UserDealClaims, Voucher
from lbs.models.events import EVENT_KINDS
from lbs.services import voucher_codes as codes
from lbs.services.api_keys import sha256_hex
from lbs.services.reviews import recount_ratings
from lbs.services.revisions import next_revision
from seed import bulk
from seed.people import DAY_S, Behaviour, generate
from seed.synthetic import DEAL_WINDOWS, SyntheticCity, SyntheticDeals, generate_city, generate_deals

Say = Callable[[str], None]
_STEP = 100_000  # rows turned into Python values at a time


@dataclass(frozen=True)
class Spec:
    merchants: int
    users: int
    days: int
    seed: int


@dataclass
class Loaded:
    counts: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)


def merchant_ref(seed: int, i: int) -> str:
    return f"synthetic:{seed}/m{i}"


def is_loaded(session: Session, seed: int) -> bool:
    found = session.execute(select(Merchant.id).where(Merchant.source_ref == merchant_ref(seed, 0)))
    return found.first() is not None


def _instant(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def _stepped(n: int, rows: Callable[[slice], Iterator[tuple[Any, ...]]]) -> Iterator[tuple[Any, ...]]:
    for start in range(0, n, _STEP):
        yield from rows(slice(start, min(n, start + _STEP)))


def _ids_at(ids: np.ndarray, index: np.ndarray) -> np.ndarray:
    """ids[index] where index >= 0, else 0 (no such row); also when there are no ids at all
    (a small city whose people claimed nothing)."""
    out = np.zeros(len(index), dtype=np.int64)
    have = index >= 0
    out[have] = ids[index[have]]
    return out


def _merchant_rows(
    city: SyntheticCity, ids: np.ndarray, seed: int, revision: int, since: datetime
) -> Iterator[tuple[Any, ...]]:
    def rows(part: slice) -> Iterator[tuple[Any, ...]]:
        lats, lons = city.lats[part].tolist(), city.lons[part].tolist()
        for k, i in enumerate(range(part.start, part.stop)):
            yield (
                int(ids[i]), city.name(i), city.categories[i], lats[k], lons[k], int(city.price_levels[i]),
                city.hours[i], timezone_at(lats[k], lons[k]), "active", merchant_ref(seed, i), revision,
                since, since,
            )  # fmt: skip

    return _stepped(len(ids), rows)


MERCHANT_COLUMNS = (
    "id", "name", "category", "lat", "lon", "price_level", "opening_hours", "timezone", "status",
    "source_ref", "revision", "created_at", "updated_at",
)  # fmt: skip
USER_COLUMNS = ("id", "token_sha256", "created_at", "source_ref")
DEAL_COLUMNS = (
    "id", "merchant_id", "title", "kind", "currency", "list_price_minor", "deal_price_minor",
    "quantity_total", "quantity_claimed", "per_user_limit", "valid_from", "valid_until", "windows",
    "status", "created_at", "updated_at",
)  # fmt: skip
VOUCHER_COLUMNS = (
    "id", "deal_id", "merchant_id", "user_id", "idempotency_key", "nonce", "code_digest", "price_minor",
    "currency", "claimed_at", "expires_at", "redeemed_at",
)  # fmt: skip
REVIEW_COLUMNS = (
    "id", "merchant_id", "deal_id", "user_id", "voucher_id", "rating", "text", "created_at", "updated_at",
    "report_count",
)  # fmt: skip
# What a synthetic reviewer says, by stars: a demo merchant's page reads like one.
REVIEW_TEXTS = (
    "Disappointing; I would not go back.",
    "Not great this time.",
    "Fine, nothing special.",
    "Good, I would come back.",
    "Excellent: a favourite now.",
)
EVENT_COLUMNS = (
    "kind", "source", "user_id", "merchant_id", "deal_id", "voucher_id", "h3_cell", "occurred_at",
    "received_at",
)  # fmt: skip


def _deal_rows(
    deals: SyntheticDeals, ids: np.ndarray, merchant_ids: np.ndarray, claimed: np.ndarray, now: datetime
) -> Iterator[tuple[Any, ...]]:
    price = deals.deal_price_minor
    for k in range(len(ids)):
        valid_from = deals.valid_from[k]
        created = _instant(min(valid_from - DAY_S, now.timestamp()))
        stock = int(deals.quantity[k])
        yield (
            int(ids[k]), int(merchant_ids[deals.merchants[k]]), deals.title(k), "percent_off", "EUR",
            int(deals.list_price_minor[k]), int(price[k]), max(stock, int(claimed[k])) if stock else None,
            int(claimed[k]), 1, _instant(valid_from), _instant(deals.valid_until[k]),
            DEAL_WINDOWS[int(deals.window[k])][1], "published", created, created,
        )  # fmt: skip


def _voucher_rows(
    behaviour: Behaviour,
    deals: SyntheticDeals,
    ids: np.ndarray,
    deal_ids: np.ndarray,
    merchant_ids: np.ndarray,
    user_ids: np.ndarray,
    secret_key: bytes,
) -> Iterator[tuple[Any, ...]]:
    claims = behaviour.claims
    price = deals.deal_price_minor
    for k in range(len(ids)):
        d = int(claims.deal[k])
        nonce = codes.new_nonce()
        redeemed = claims.redeemed_at[k]
        yield (
            int(ids[k]), int(deal_ids[d]), int(merchant_ids[deals.merchants[d]]),
            int(user_ids[claims.person[k]]), f"synthetic-{k}", nonce,
            codes.code_digest(secret_key, codes.code_for(secret_key, nonce)), int(price[d]), "EUR",
            _instant(claims.claimed_at[k]), _instant(deals.valid_until[d]),
            None if np.isnan(redeemed) else _instant(redeemed),
        )  # fmt: skip


def _review_rows(
    behaviour: Behaviour,
    deals: SyntheticDeals,
    ids: np.ndarray,
    deal_ids: np.ndarray,
    merchant_ids: np.ndarray,
    user_ids: np.ndarray,
    voucher_ids: np.ndarray,
) -> Iterator[tuple[Any, ...]]:
    reviews, claims = behaviour.reviews, behaviour.claims
    for k in range(len(ids)):
        claim = int(reviews.claim[k])
        d = int(claims.deal[claim])
        rating = int(reviews.rating[k])
        written = _instant(reviews.at[k])
        yield (
            int(ids[k]), int(merchant_ids[deals.merchants[d]]), int(deal_ids[d]),
            int(user_ids[claims.person[claim]]), int(voucher_ids[claim]), rating, REVIEW_TEXTS[rating - 1],
            written, written, 0,
        )  # fmt: skip


def _event_rows(
    behaviour: Behaviour,
    merchant_ids: np.ndarray,
    user_ids: np.ndarray,
    deal_ids: np.ndarray,
    voucher_ids: np.ndarray,
) -> Iterator[tuple[Any, ...]]:
    e = behaviour.events
    kinds = list(EVENT_KINDS)
    sources = ["client" if kind == "visit" else "server" for kind in EVENT_KINDS]

    def rows(part: slice) -> Iterator[tuple[Any, ...]]:
        deal = e.deal[part]
        claim = e.claim[part]
        columns = zip(
            e.kind[part].tolist(),
            user_ids[e.person[part]].tolist(),
            merchant_ids[e.merchant[part]].tolist(),
            _ids_at(deal_ids, deal).tolist(),
            _ids_at(voucher_ids, claim).tolist(),
            e.cell[part].tolist(),
            e.at[part].tolist(),
            strict=True,
        )
        for kind, user, merchant, deal_id, voucher_id, cell, at in columns:
            instant = _instant(at)
            yield (
                kinds[kind], sources[kind], user, merchant, deal_id or None, voucher_id or None, cell or None,
                instant, instant,
            )  # fmt: skip

    return _stepped(len(e), rows)


def _block(base: dict[str, int], table: Table, n: int) -> np.ndarray:
    return np.arange(base[table.name] + 1, base[table.name] + 1 + n, dtype=np.int64)


def _table(model: type) -> Table:
    return cast(Table, model.__table__)  # type: ignore[attr-defined]


class _Writer:
    """Writes tables through the bulk path, timing each and saying how it went."""

    def __init__(self, session: Session, say: Say) -> None:
        self.session, self.say = session, say
        self.loaded = Loaded()

    def put(self, table: Table, columns: Sequence[str], rows: Iterator[tuple[Any, ...]], n: int) -> None:
        started = time.perf_counter()
        self.loaded.counts[table.name] = bulk.write(self.session, table, columns, rows, n)
        self.loaded.seconds[table.name] = seconds = time.perf_counter() - started
        self.say(f"{table.name}: {n:,} rows in {seconds:.1f} s")


def write_people(
    session: Session,
    ref_prefix: str,
    merchant_ids: np.ndarray,
    deals: SyntheticDeals,
    behaviour: Behaviour,
    until: datetime,
    secret_key: bytes,
    say: Say,
) -> Loaded:
    """Users (source refs ``<ref_prefix><i>``), deals, vouchers, events and reviews for
    merchants already written (``merchant_ids`` by merchant index), through the bulk path;
    the reviewed merchants' rating totals from their reviews."""
    users, deal_table, vouchers, events, reviews = (_table(m) for m in (User, Deal, Voucher, Event, Review))
    with_ids = (users, deal_table, vouchers, events, reviews)
    base = bulk.reserve_ids(session, with_ids)
    n_people = len(behaviour.people.taste)
    user_ids = _block(base, users, n_people)
    deal_ids = _block(base, deal_table, len(deals.merchants))
    voucher_ids = _block(base, vouchers, len(behaviour.claims.person))
    since = _instant(behaviour.events.at.min()) if len(behaviour.events) else until
    writer = _Writer(session, say)
    user_rows = (
        (int(user_ids[i]), sha256_hex(secrets.token_urlsafe(32)), since, f"{ref_prefix}{i}")
        for i in range(n_people)
    )
    writer.put(users, USER_COLUMNS, user_rows, n_people)
    claimed = np.bincount(behaviour.claims.deal, minlength=len(deals.merchants))
    deal_rows = _deal_rows(deals, deal_ids, merchant_ids, claimed, until)
    writer.put(deal_table, DEAL_COLUMNS, deal_rows, len(deal_ids))
    voucher_rows = _voucher_rows(behaviour, deals, voucher_ids, deal_ids, merchant_ids, user_ids, secret_key)
    writer.put(vouchers, VOUCHER_COLUMNS, voucher_rows, len(voucher_ids))
    holders = (
        (int(deal_ids[d]), int(user_ids[p]), 1)
        for d, p in zip(behaviour.claims.deal.tolist(), behaviour.claims.person.tolist(), strict=True)
    )
    writer.put(_table(UserDealClaims), ("deal_id", "user_id", "claims"), holders, len(voucher_ids))
    event_rows = _event_rows(behaviour, merchant_ids, user_ids, deal_ids, voucher_ids)
    writer.put(events, EVENT_COLUMNS, event_rows, len(behaviour.events))
    n_reviews = len(behaviour.reviews)
    review_ids = _block(base, reviews, n_reviews)
    review_rows = _review_rows(behaviour, deals, review_ids, deal_ids, merchant_ids, user_ids, voucher_ids)
    writer.put(reviews, REVIEW_COLUMNS, review_rows, n_reviews)
    recount_ratings(session, base[reviews.name])
    bulk.advance_sequences(session, with_ids)
    return writer.loaded


def load(session: Session, spec: Spec, now: datetime, secret_key: bytes, say: Say) -> Loaded:
    """Generate and write everything in the caller's transaction (on SQLite, begun IMMEDIATE).

    The period ends at the start of ``now``'s UTC day, so a seed gives the same rows all day.
    """
    until = now.replace(hour=0, minute=0, second=0, microsecond=0)
    started = time.perf_counter()
    city = generate_city(spec.merchants, seed=spec.seed)
    categories = np.array([CATEGORY_CODES[c] for c in city.categories], dtype=np.int64)
    deals = generate_deals(categories, until, spec.days, spec.seed)
    behaviour = generate(city.lats, city.lons, categories, deals, spec.users, spec.days, until, spec.seed)
    generating = time.perf_counter() - started
    say(
        f"generated {spec.merchants:,} merchants, {spec.users:,} people, {len(deals.merchants):,} deals, "
        f"{len(behaviour.claims.person):,} vouchers and {len(behaviour.events):,} events "
        f"in {generating:.1f} s"
    )

    merchants = _table(Merchant)
    base = bulk.reserve_ids(session, [merchants])
    merchant_ids = _block(base, merchants, spec.merchants)
    since = _instant(until.timestamp() - spec.days * DAY_S)
    writer = _Writer(session, say)
    merchant_rows = _merchant_rows(city, merchant_ids, spec.seed, next_revision(session), since)
    writer.put(merchants, MERCHANT_COLUMNS, merchant_rows, spec.merchants)
    bulk.advance_sequences(session, [merchants])
    loaded = writer.loaded
    people = write_people(
        session, f"synthetic:{spec.seed}/u", merchant_ids, deals, behaviour, until, secret_key, say
    )
    loaded.counts.update(people.counts)
    loaded.seconds.update(people.seconds, generate=generating)
    if session.get_bind().dialect.name == "postgresql":
        # Fresh statistics, or the planner would take millions of rows for an empty table.
        started = time.perf_counter()
        session.execute(text("ANALYZE merchants, users, deals, vouchers, user_deal_claims, events"))
        loaded.seconds["analyze"] = time.perf_counter() - started
    return loaded
