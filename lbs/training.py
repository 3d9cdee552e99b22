"""`lbs train`: the event log to a model file the API workers pick up.

Interactions are the events of the window (visits, redemptions, claims, clicks; the
weights are recommender.interactions.Weighting's); candidates for the validation cases
come from the nearby index over the active merchants, as in `lbs evaluate`.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from lbs.evaluation import Venues, candidate_source
from lbs.models import Event, Merchant
from recommender import training
from recommender.model import Model


def read_interactions(
    session: Session, since: datetime, until: datetime, kinds: tuple[str, ...]
) -> training.Interactions:
    """Events of ``kinds`` from ``since`` until (not including) ``until``."""
    rows = session.execute(
        select(Event.user_id, Event.merchant_id, Event.kind, Event.occurred_at)
        .where(
            Event.occurred_at >= since,
            Event.occurred_at < until,
            Event.kind.in_(kinds),
            Event.user_id.is_not(None),
            Event.merchant_id.is_not(None),
        )
        .execution_options(yield_per=50_000)
    )
    users: list[int] = []
    items: list[int] = []
    names: list[str] = []
    times: list[float] = []
    for user, merchant, kind, occurred in rows:
        assert user is not None and merchant is not None  # the query keeps no nulls
        users.append(user)
        items.append(merchant)
        names.append(kind)
        times.append(occurred.timestamp())
    return training.Interactions(
        np.asarray(users, dtype=np.int64),
        np.asarray(items, dtype=np.int64),
        np.asarray(names, dtype=str),
        np.asarray(times, dtype=np.float64),
    )


def read_merchants(session: Session) -> Venues:
    rows = session.execute(
        select(Merchant.id, Merchant.lat, Merchant.lon).where(Merchant.status == "active")
    ).all()
    table = np.asarray(rows, dtype=np.float64).reshape(-1, 3)
    return Venues(table[:, 0].astype(np.int64), table[:, 1], table[:, 2])


def train_from_events(
    session: Session,
    now: datetime,
    days: int,
    radius_m: float,
    params: training.TrainParams | None = None,
    progress: training.Progress | None = None,
) -> Model:
    """A model of the last ``days`` of events; raises training.NotEnoughHistory."""
    params = params or training.TrainParams()
    kinds = tuple(k for k, weight in params.weighting.kinds.items() if weight > 0)
    data = read_interactions(session, now - timedelta(days=days), now, kinds)
    merchants = read_merchants(session)
    model = training.train(data, candidate_source(merchants, radius_m), params, progress)
    model.meta["radius_m"] = radius_m
    return model
