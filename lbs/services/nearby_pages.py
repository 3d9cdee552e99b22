"""What a nearby search takes and gives: the query, its pages and items, and their cursors."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import numpy.typing as npt
from sqlalchemy.orm import Session

from lbs.errors import InvalidParameter
from lbs.geo.distance import chord2_to_m
from lbs.search.words import TextQuery
from lbs.services import cursors
from lbs.services.deal_offers import MerchantOffer, deal_summary
from lbs.services.deal_patterns import micros
from lbs.services.deal_schedule import EARLIEST, LATEST
from lbs.services.hours import UNKNOWN, Hours

if TYPE_CHECKING:  # the searches hand them in
    from lbs.services.deal_reads import DealReads
    from lbs.services.live_index import LiveIndex

MAX_OFFSET = 1_000_000


@dataclass(frozen=True)
class NearbyQuery:
    lat: float
    lon: float
    radius_m: float
    limit: int
    at: datetime  # deals are shown (and has_deal walks taken) as of this instant
    cursor: str | None = None
    categories: tuple[str, ...] | None = None
    sort: str = "distance"
    has_deal: bool = False
    user_id: int | None = None  # whose history sort=relevance reads (None: anonymous)
    open_now: bool = False  # only merchants open at `at` (in their own zone)
    text: TextQuery | None = None  # only merchants matching these words (q)
    min_rating: float | None = None  # only merchants whose shown average is at least this


@dataclass(frozen=True)
class NearbyItem:
    merchant: dict[str, Any]
    distance_m: float
    deal: dict[str, Any] | None = None
    next_deal: dict[str, Any] | None = None
    reasons: list[dict[str, Any]] | None = None  # sort=relevance only
    hours: Hours = UNKNOWN  # open at the page's instant, and the next change


@dataclass(frozen=True)
class NearbyPage:
    total: int
    items: list[NearbyItem]
    next_cursor: str | None
    ranking: str
    at: datetime
    model: str | None = None  # the model version that ranked the page


@dataclass(frozen=True)
class PageCursor:
    """After the last item of a page; deal_ending pages also pin the instant they rank at."""

    chord2: float
    id: int
    ends_us: int | None = None
    at_us: int | None = None
    offset: int | None = None  # sort=relevance: how many results came before
    score: float | None = None  # sort=relevance with q: the last item's relevance (nearby_text)
    rating: float | None = None  # sort=rating: the last item's average, 0 if unrated (nearby_rated)


def _fingerprint(query: NearbyQuery) -> str:
    fields: list[object] = [
        query.lat,
        query.lon,
        query.radius_m,
        query.categories,
        query.sort,
        query.has_deal,
        query.open_now,
    ]
    if query.text is not None:  # appended only when given: cursors of earlier releases still hold
        fields.append(str(query.text))
    if query.min_rating is not None:
        fields.append(["min_rating", query.min_rating])
    return cursors.fingerprint(fields)


def encode_cursor(
    query: NearbyQuery,
    chord2: float,
    merchant_id: int,
    ends_us: int | None = None,
    at_us: int | None = None,
    offset: int | None = None,
    score: float | None = None,
    rating: float | None = None,
) -> str:
    fields: dict[str, Any] = {"q": _fingerprint(query), "d": chord2.hex(), "i": merchant_id}
    if score is not None:
        fields["s"] = score.hex()
    if rating is not None:
        fields["r"] = rating.hex()
    if ends_us is not None:
        fields["e"] = ends_us
    if at_us is not None:
        fields["t"] = at_us
    if offset is not None:
        fields["o"] = offset
    return cursors.encode(fields)


def decode_cursor(query: NearbyQuery, token: str) -> PageCursor:
    cursor, fingerprint = cursors.decode(
        token,
        lambda raw: (
            PageCursor(
                float.fromhex(raw["d"]),
                int(raw["i"]),
                None if raw.get("e") is None else int(raw["e"]),
                None if raw.get("t") is None else int(raw["t"]),
                None if raw.get("o") is None else int(raw["o"]),
                None if raw.get("s") is None else float.fromhex(raw["s"]),
                None if raw.get("r") is None else float.fromhex(raw["r"]),
            ),
            raw["q"],
        ),
    )
    instants = [us for us in (cursor.ends_us, cursor.at_us) if us is not None]
    if (
        any(not micros(EARLIEST) <= us <= micros(LATEST) for us in instants)
        or (cursor.offset is not None and not 0 <= cursor.offset <= MAX_OFFSET)
        or (cursor.score is not None and not 0.0 <= cursor.score <= 1.0)
        or (cursor.rating is not None and not 0.0 <= cursor.rating <= 5.0)
    ):
        raise InvalidParameter("cursor", cursors.MALFORMED)
    if (
        fingerprint != _fingerprint(query)
        or (query.sort == "deal_ending") != (cursor.ends_us is not None)
        or ranks_by_text(query) != (cursor.score is not None)
        or (query.sort == "rating") != (cursor.rating is not None)
    ):
        raise InvalidParameter(
            "cursor",
            "cursor belongs to another query; keep lat, lon, radius_m, q, category, has_deal, "
            "open_now, min_rating and sort unchanged",
        )
    return cursor


def ranks_by_text(query: NearbyQuery) -> bool:
    """Whether the page is ranked by text relevance (lbs.services.nearby_text)."""
    return query.text is not None and query.sort == "relevance" and not query.has_deal


def item(
    merchant: dict[str, Any],
    distance_m: float,
    offer: MerchantOffer | None,
    reasons: list[dict[str, Any]] | None = None,
) -> NearbyItem:
    if offer is None:
        return NearbyItem(merchant, distance_m, reasons=reasons)
    return NearbyItem(
        merchant,
        distance_m,
        None if offer.now is None else deal_summary(offer.now),
        None if offer.next is None else deal_summary(offer.next),
        reasons,
    )


def page_items(
    session: Session,
    live: LiveIndex,
    deals: DealReads,
    ids: Sequence[int],
    chord2: Sequence[float] | npt.NDArray[np.float64],
    at: datetime,
) -> list[NearbyItem]:
    """The items of a page of merchants (in the order of ``ids``, at squared chord lengths
    ``chord2``): public rows, each one's deals at ``at``, distances to the centimetre. A
    merchant gone from the database since the index read it is left out."""
    merchants = live.public_merchants(session, ids)
    offers = deals.offers([m for m in ids if m in merchants], at)
    distances_m = chord2_to_m(chord2).round(2).tolist()
    return [
        item(merchants[m], distance_m, offers.get(m))
        for m, distance_m in zip(ids, distances_m, strict=True)
        if m in merchants
    ]


def after_nearer(
    chord2: npt.NDArray[np.float64], ids: npt.NDArray[np.int64], after: PageCursor
) -> npt.NDArray[np.bool_]:
    """Strictly after the cursor's (chord2, id) in the nearest-first order."""
    return (chord2 > after.chord2) | ((chord2 == after.chord2) & (ids > after.id))


def best_first_order(
    values: npt.NDArray[np.float64], chord2: npt.NDArray[np.float64], ids: npt.NDArray[np.int64]
) -> npt.NDArray[np.intp]:
    """Best value first, then nearest, then by id: sort=rating's order and q's relevance's."""
    return np.lexsort((ids, chord2, -values))


def after_best(
    values: npt.NDArray[np.float64],
    chord2: npt.NDArray[np.float64],
    ids: npt.NDArray[np.int64],
    value: float,
    after: PageCursor,
) -> npt.NDArray[np.bool_]:
    """Strictly after (``value``, the cursor's chord2 and id) in best_first_order."""
    return (values < value) | ((values == value) & after_nearer(chord2, ids, after))


def best_first_page(
    session: Session,
    live: LiveIndex,
    deals: DealReads,
    query: NearbyQuery,
    found: tuple[npt.NDArray[np.int64], npt.NDArray[np.float64], npt.NDArray[np.float64]],
    after: PageCursor | None,
    ranking: Literal["rating", "relevance"],
) -> NearbyPage:
    """One keyset page of ``found`` (ids, chord2, values) in best_first_order: sort=rating
    (values: the shown averages) and q's relevance. Cursors hold the last item's value in
    the ranking's field (rating, score)."""
    ids, chord2, values = found
    order = best_first_order(values, chord2, ids)
    ids, chord2, values = ids[order], chord2[order], values[order]
    total = len(ids)
    if after is not None:
        value = after.rating if ranking == "rating" else after.score
        assert value is not None  # decode_cursor saw to it
        keep = after_best(values, chord2, ids, value, after)
        ids, chord2, values = ids[keep], chord2[keep], values[keep]
    items = page_items(session, live, deals, ids[: query.limit].tolist(), chord2[: query.limit], query.at)
    next_cursor = None
    if len(ids) > query.limit:
        last = query.limit - 1
        held = float(values[last])
        rating, score = (held, None) if ranking == "rating" else (None, held)
        next_cursor = encode_cursor(query, float(chord2[last]), int(ids[last]), score=score, rating=rating)
    return NearbyPage(total=total, items=items, next_cursor=next_cursor, ranking=ranking, at=query.at)


def page_to_geojson(page: NearbyPage) -> dict[str, Any]:
    """RFC 7946 FeatureCollection, positions in [lon, lat] order; what the JSON page says
    beside its items (total, ranking, model, at, next_cursor) as foreign members."""
    return {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "id": item.merchant["id"],
                "geometry": {"type": "Point", "coordinates": [item.merchant["lon"], item.merchant["lat"]]},
                "properties": {
                    **item.merchant,
                    "distance_m": item.distance_m,
                    **item.hours.public(),
                    "deal": item.deal,
                    "next_deal": item.next_deal,
                    **({"reasons": item.reasons} if item.reasons is not None else {}),
                },
            }
            for item in page.items
        ],
        "total": page.total,
        "next_cursor": page.next_cursor,
        "ranking": page.ranking,
        **({"model": page.model} if page.model else {}),
        "at": page.at.isoformat(),
    }
