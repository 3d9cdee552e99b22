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
from sqlalchemy import select
from sqlalchemy.orm import Session

from lbs.categories import Category
from lbs.errors import InputFileError
from lbs.evaluation import read_checkins, read_venues
from lbs.models import Event, Merchant
from lbs.services.events import record_events
from lbs.services.merchants import MerchantFields, upsert_by_source_ref
from lbs.services.sources import ids_by_source_ref
from lbs.services.users import imported_users

CHECKINS = "Foursquare_checkins.txt"  # user, venue, unix time (tab-separated)
VENUES = "Foursquare_poi_coos.txt"  # venue, latitude, longitude


@dataclass
class Loaded:
    venues: int = 0
    users: int = 0
    visits: int = 0  # new visit events
    counts: Counter[str] = field(default_factory=Counter)  # what was skipped, and why


def check_directory(directory: Path) -> None:
    """Raise InputFileError unless ``directory`` holds both files (naming a directory below
    it that does, when one does: ../shared/data instead of ../shared/data/foursquare-us)."""
    missing = [name for name in (VENUES, CHECKINS) if not (directory / name).is_file()]
    if not missing:
        return
    below = sorted(p.parent for p in directory.glob(f"*/{VENUES}") if (p.parent / CHECKINS).is_file())
    hint = (
        f"did you mean {below[0]}?"
        if below
        else f"give the directory that holds {VENUES} and {CHECKINS} (e.g. ../shared/data/foursquare-us)"
    )
    raise InputFileError(directory, f"no {' or '.join(missing)} in this directory", hint)


def load(session: Session, directory: Path, now: datetime) -> Loaded:
    check_directory(directory)
    venues, checkins = read_venues(directory / VENUES), read_checkins(directory / CHECKINS)
    loaded = Loaded()
    merchants = [
        (
            f"foursquare:venue/{v}",
            MerchantFields(name=f"Foursquare venue {v}", category=Category.other, lat=lat, lon=lon),
        )
        for v, lat, lon in zip(venues.ids.tolist(), venues.lats.tolist(), venues.lons.tolist(), strict=True)
    ]
    done = upsert_by_source_ref(session, merchants, now)
    loaded.venues = done.inserted
    placed = np.isin(checkins.venues, venues.ids)
    loaded.counts["check-ins at a venue without coordinates"] = int((~placed).sum())
    loaded.counts["venues without coordinates"] = len(np.unique(checkins.venues[~placed]))
    checkins = checkins.subset(placed)
    users = imported_users(session, [f"foursquare:user/{u}" for u in np.unique(checkins.users).tolist()], now)
    loaded.users = len(users)
    merchant_of = ids_by_source_ref(session, Merchant, [ref for ref, _ in merchants])
    known = {
        (user_id, client_id)
        for user_id, client_id in session.execute(
            select(Event.user_id, Event.client_event_id).where(Event.client_event_id.like("foursquare:%"))
        )
    }
    rows = []
    for user, venue, time in zip(
        checkins.users.tolist(), checkins.venues.tolist(), checkins.times.tolist(), strict=True
    ):
        user_id = users[f"foursquare:user/{user}"]
        client_id = f"foursquare:{venue}@{int(time)}"
        if (user_id, client_id) in known:
            continue
        known.add((user_id, client_id))  # a check-in listed twice is one visit
        at = datetime.fromtimestamp(time, UTC)
        rows.append(
            {
                "kind": "visit",
                "source": "client",
                "user_id": user_id,
                "merchant_id": merchant_of[f"foursquare:venue/{venue}"],
                "client_event_id": client_id,
                "occurred_at": at,
                "received_at": at,
            }
        )
    for start in range(0, len(rows), 20_000):
        record_events(session, rows[start : start + 20_000])
    loaded.visits = len(rows)
    return loaded
