"""Deals as a request reads them: from the process's deal book, or from the database for an
instant the book does not cover (``at`` before its floor, or before it has loaded)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
from sqlalchemy.orm import Session

from lbs.categories import CATEGORY_CODES
from lbs.services.deal_book import BestDeals, Claimable, DealBook, micros
from lbs.services.deal_offers import DealAt, MerchantOffer, best_offers, merchants_with_deals, offers_near


@dataclass(frozen=True)
class DealReads:
    session: Session
    book: DealBook

    def offers(self, merchant_ids: Sequence[int], at: datetime) -> dict[int, MerchantOffer]:
        """Each merchant's best deal claimable at ``at``, or else the next to open."""
        if not merchant_ids:
            return {}
        if self.book.covers(at):
            return self.book.offers(merchant_ids, at)
        return best_offers(self.session, merchant_ids, at)

    def best_claimable(self, merchant_ids: Sequence[int], at: datetime) -> BestDeals:
        """The numbers of each merchant's best deal claimable at ``at`` (those that have one)."""
        if self.book.covers(at):
            return self.book.best_claimable(merchant_ids, at)
        offers = best_offers(self.session, merchant_ids, at)
        best = [(i, o.now) for i, m in enumerate(merchant_ids) if (o := offers.get(m)) and o.now]
        deals = [now.deal for _, now in best]
        return BestDeals(
            np.array([i for i, _ in best], dtype=np.int64),
            np.array([now.discount for _, now in best], dtype=np.float64),
            np.array([micros(now.ends_at or now.deal.valid_until) for _, now in best], dtype=np.int64),
            np.array([-1 if d.quantity_total is None else d.quantity_total for d in deals], dtype=np.int64),
            np.array([d.quantity_claimed for d in deals], dtype=np.int64),
        )

    def claimable_near(
        self, lat: float, lon: float, radius_m: float, at: datetime, categories: Sequence[str] | None
    ) -> tuple[Claimable, dict[int, DealAt] | None]:
        """Merchants within the radius with a deal claimable at ``at``, nearest first (ties by
        id); from the database also their best deals (from the book: ask offers())."""
        if self.book.covers(at):
            codes = None if categories is None else [CATEGORY_CODES[c] for c in categories]
            return self.book.claimable_near(lat, lon, radius_m, at, codes), None
        near = sorted(
            offers_near(self.session, lat, lon, radius_m, at, categories),
            key=lambda n: (n.chord2, n.merchant_id),
        )
        found = Claimable(
            np.array([n.merchant_id for n in near], dtype=np.int64),
            np.array([n.chord2 for n in near], dtype=np.float64),
            np.array([micros(n.offer.ends_at or n.offer.deal.valid_until) for n in near], dtype=np.int64),
        )
        return found, {n.merchant_id: n.offer for n in near}

    def merchants_with_deals(
        self, at: datetime, among: Sequence[int] | np.ndarray, *, started: bool = False
    ) -> np.ndarray:
        """Merchants with a published deal not over at ``at`` (begun, with ``started``):
        at least all of those among ``among``, ascending."""
        if self.book.covers(at):
            return self.book.merchants_with_deals(at, started=started)
        found = merchants_with_deals(self.session, at, among, started=started)
        return np.unique(np.array(found, dtype=np.int64))
