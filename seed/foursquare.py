"""Foursquare check-ins (../shared/data/foursquare-us) as merchants, users and visits.

Venues become merchants of category "other" (the data has no categories) named by their
id, users become imported users (no sign-in), and every check-in a visit event at its
real time, so the recommender has real behaviour to learn from. A check-in at a venue
without coordinates is skipped and counted. Keys make a re-import add nothing twice:
merchants by "foursquare:venue/<id>", users by "foursquare:user/<id>", visits by their
user, venue and time (the event's client id).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import numpy.typing as npt
from sqlalchemy import select
from sqlalchemy.orm import Session

from lbs.categories import Category
from lbs.models import Event
from lbs.services.events import record_events
from lbs.services.merchants import MerchantFields, merchant_ids_by_source_ref, upsert_by_source_ref
from lbs.services.users import imported_users

CHECKINS = "Foursquare_checkins.txt"  # user, venue, unix time (tab-separated)
VENUES = "Foursquare_poi_coos.txt"  # venue, latitude, longitude


@dataclass
class Loaded:
    venues: int = 0
    users: int = 0
    visits: int = 0  # new visit events
    counts: Counter[str] = field(default_factory=Counter)  # what was skipped, and why


def _table(path: Path, columns: int) -> npt.NDArray[np.float64]:
    return np.loadtxt(path, delimiter="\t", dtype=np.float64, ndmin=2).reshape(-1, columns)


def load(session: Session, directory: Path, now: datetime) -> Loaded:
    venues, checkins = _table(directory / VENUES, 3), _table(directory / CHECKINS, 3)
    loaded = Loaded()
    merchants = [
        (
            f"foursquare:venue/{int(v)}",
            MerchantFields(name=f"Foursquare venue {int(v)}", category=Category.other, lat=lat, lon=lon),
        )
        for v, lat, lon in venues.tolist()
    ]
    done = upsert_by_source_ref(session, merchants, now)
    loaded.venues = done.inserted
    placed = np.isin(checkins[:, 1], venues[:, 0])
    loaded.counts["check-ins at a venue without coordinates"] = int((~placed).sum())
    loaded.counts["venues without coordinates"] = len(np.unique(checkins[~placed, 1]))
    checkins = checkins[placed]
    users = imported_users(session, [f"foursquare:user/{int(u)}" for u in np.unique(checkins[:, 0])], now)
    loaded.users = len(users)
    merchant_of = merchant_ids_by_source_ref(session, [ref for ref, _ in merchants])
    known = {
        (user_id, client_id)
        for user_id, client_id in session.execute(
            select(Event.user_id, Event.client_event_id).where(Event.client_event_id.like("foursquare:%"))
        )
    }
    rows = []
    for user, venue, time in checkins.tolist():
        user_id = users[f"foursquare:user/{int(user)}"]
        client_id = f"foursquare:{int(venue)}@{int(time)}"
        if (user_id, client_id) in known:
            continue
        known.add((user_id, client_id))  # a check-in listed twice is one visit
        at = datetime.fromtimestamp(time, UTC)
        rows.append(
            {
                "kind": "visit",
                "source": "client",
                "user_id": user_id,
                "merchant_id": merchant_of[f"foursquare:venue/{int(venue)}"],
                "client_event_id": client_id,
                "occurred_at": at,
                "received_at": at,
            }
        )
    for start in range(0, len(rows), 20_000):
        record_events(session, rows[start : start + 20_000])
    loaded.visits = len(rows)
    return loaded
