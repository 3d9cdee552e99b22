"""`lbs train`: the event log to a model file the API workers pick up.

Interactions are the events of the window (visits, redemptions, claims, clicks; the
weights are recommender.interactions.Weighting's), read in bulk as arrays
(lbs.column_reads); candidates for the validation cases are what the nearby index finds
over the active merchants, as in `lbs evaluate` (lbs.evaluation.candidate_source). The
reviews written before the window's end rate the merchants (recommender.ratings: each fit
reads those before it), with a prior per category; the model carries the ratings, so
ranking reads them with the rest of its features and never asks the database per request.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

import numpy as np
from sqlalchemy import Connection, Engine, SmallInteger, case, cast, func, select
from sqlalchemy.orm import Session

from lbs.categories import CATEGORY_CODES
from lbs.column_reads import read_columns
from lbs.evaluation import Venues, VenuesAround, candidate_source
from lbs.models import Event, Merchant, Review
from lbs.services.database_identity import database_id
from recommender import training
from recommender.model import Model
from recommender.ratings import Categories, Reviews


def read_interactions(
    session: Session, since: datetime, until: datetime, kinds: tuple[str, ...]
) -> training.Interactions:
    """Events of ``kinds`` from ``since`` until (not including) ``until``, in the log's
    order (by id: the same events train the same model, whatever plan the database picks)."""
    code = cast(case({kind: i for i, kind in enumerate(kinds)}, value=Event.kind), SmallInteger)
    ids, users, merchants, codes, times = read_columns(
        session,
        select(Event.id, Event.user_id, Event.merchant_id, code, Event.occurred_at).where(
            Event.occurred_at >= since,
            Event.occurred_at < until,
            Event.kind.in_(kinds),
            Event.user_id.is_not(None),
            Event.merchant_id.is_not(None),
        ),
        ("int64", "int64", "int64", "int16", "utc_seconds"),
    )
    order = np.argsort(ids, kind="stable")  # cheaper here than an ORDER BY's sort on disk
    names = np.asarray(kinds, dtype=str)
    return training.Interactions(users[order], merchants[order], names[codes[order]], times[order])


def read_merchants(session: Session) -> Venues:
    ids, lats, lons = read_columns(
        session,
        select(Merchant.id, Merchant.lat, Merchant.lon).where(Merchant.status == "active"),
        ("int64", "float64", "float64"),
    )
    return Venues(ids, lats, lons)


def read_reviews(session: Session, until: datetime) -> Reviews:
    """Every review written before ``until``: its merchant, rating and when it was written."""
    _, merchants, ratings, times = read_columns(
        session,
        select(Review.id, Review.merchant_id, Review.rating, Review.created_at).where(
            Review.created_at < until
        ),
        ("int64", "int64", "int16", "utc_seconds"),
    )
    return Reviews.of(merchants, ratings, times)


def read_categories(session: Session) -> Categories:
    """Every merchant's category, as lbs.categories codes."""
    code = cast(case(CATEGORY_CODES, value=Merchant.category, else_=-1), SmallInteger)
    ids, codes = read_columns(session, select(Merchant.id, code), ("int64", "int16"))
    return Categories(ids, codes.astype(np.int64))


def _candidates(bind: Engine | Connection, radius_m: float) -> VenuesAround:
    with Session(bind) as session:
        return candidate_source(read_merchants(session), radius_m)


def train_from_events(
    session: Session,
    now: datetime,
    days: int,
    radius_m: float,
    params: training.TrainParams | None = None,
    progress: training.Progress | None = None,
) -> Model:
    """A model of the last ``days`` of events, bound to this database (its meta's
    database_id: workers of another database refuse it); raises training.NotEnoughHistory."""
    params = params or training.TrainParams()
    bound_to = database_id(session)
    kinds = tuple(k for k, weight in params.weighting.kinds.items() if weight > 0)
    bind = session.get_bind()
    if bind.dialect.name == "postgresql":
        # Both reads are mostly the server's scans: the merchants (and the grid over them)
        # come over a second connection while the events come over this one.
        with ThreadPoolExecutor(max_workers=1) as pool:
            around = pool.submit(_candidates, bind, radius_m)
            data = read_interactions(session, now - timedelta(days=days), now, kinds)
            candidates = around.result()
    else:  # SQLite's connections are per thread (one database per connection in memory)
        data = read_interactions(session, now - timedelta(days=days), now, kinds)
        candidates = candidate_source(read_merchants(session), radius_m)
    reviews, categories = read_reviews(session, now), read_categories(session)
    model = training.train(data, candidates, params, progress, reviews=reviews, categories=categories)
    model.meta["radius_m"] = radius_m
    model.meta["database_id"] = bound_to
    return model


def visit_span(session: Session) -> tuple[datetime, datetime] | None:
    """When the event log's first and last visits happened (None: it has none): what to
    suggest when a window finds none (check-ins imported from 2013 are years before now)."""
    first, last = session.execute(
        select(func.min(Event.occurred_at), func.max(Event.occurred_at)).where(
            Event.kind.in_(training.VISIT_KINDS), Event.merchant_id.is_not(None)
        )
    ).one()
    return None if first is None else (first, last)
