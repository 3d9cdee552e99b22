"""The insights peer: a merchant's funnel per bucket from the raw events, in one SQL statement.

What a developer without a rollup writes: every number of every bucket from the events table
(distinct users, unique user-days, counts and money), bucketed by the event's own local time
(day, hour) or by its last touch (area, source: a LATERAL subquery per click, claim and
redemption), as lbs.services.insights counts them. Used by benchmarks/insights.py directly and
by the peer app (benchmarks/peer/app.py, GET /insights) through gunicorn.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import psycopg
from psycopg.rows import tuple_row

# The peer: every number of a bucket from the raw events in one statement. Buckets by the
# event's own local time (day, hour) or by its last touch (area, source), as the service.
PEER = """
WITH ev AS (
  SELECT e.id, e.user_id, e.kind, e.deal_id, e.h3_cell, e.surface, e.occurred_at,
         (e.occurred_at AT TIME ZONE (SELECT timezone FROM merchants WHERE id = %(m)s)) AS local,
         v.price_minor, d.list_price_minor,
         coalesce(v.claimed_at, e.occurred_at) AS touch_at, coalesce(v.deal_id, e.deal_id) AS touch_deal
  FROM events e
  LEFT JOIN vouchers v ON v.id = e.voucher_id AND e.kind = 'redemption'
  LEFT JOIN deals d ON d.id = v.deal_id
  WHERE e.merchant_id = %(m)s AND e.kind IN ('impression', 'click', 'claim', 'redemption')
    AND e.user_id IS NOT NULL AND e.occurred_at >= %(lo)s AND e.occurred_at < %(hi)s
), placed AS (
  SELECT ev.*, {bucket} AS bucket FROM ev {joins}
)
SELECT bucket, count(DISTINCT user_id) AS users,
       count(DISTINCT (user_id, local::date)) FILTER (WHERE kind = 'impression') AS impressions,
       count(*) FILTER (WHERE kind = 'click') AS clicks,
       count(*) FILTER (WHERE kind = 'claim') AS claims,
       count(*) FILTER (WHERE kind = 'redemption') AS redemptions,
       coalesce(sum(price_minor) FILTER (WHERE kind = 'redemption'), 0) AS revenue_minor,
       coalesce(sum(greatest(list_price_minor - price_minor, 0)) FILTER (WHERE kind = 'redemption'), 0)
         AS discount_minor
FROM placed WHERE local::date BETWEEN %(first)s AND %(last)s GROUP BY bucket
"""
# An H3 cell's res-7 parent: resolution bits (52-55) set to 7, digits 8-15 to 7 (all ones).
AREA = "to_hex((({cell} | 16777215) & ~(15::bigint << 52)) | (7::bigint << 52))"
LAST_SEEN = """LEFT JOIN LATERAL (
    SELECT t.h3_cell AS seen_cell FROM events t WHERE t.user_id = ev.user_id AND t.merchant_id = %(m)s
      AND t.kind = 'impression' AND t.h3_cell IS NOT NULL
      AND (ev.touch_deal IS NULL OR t.deal_id = ev.touch_deal)
      AND t.occurred_at <= ev.touch_at AND t.occurred_at >= ev.touch_at - interval '30 days'
    ORDER BY t.occurred_at DESC, t.id DESC LIMIT 1) seen ON ev.kind <> 'impression'"""
LAST_TOUCH = """LEFT JOIN LATERAL (
    SELECT t.surface FROM events t WHERE t.user_id = ev.user_id AND t.merchant_id = %(m)s
      AND t.kind IN ('impression', 'click') AND t.deal_id = ev.touch_deal
      AND t.occurred_at <= ev.touch_at AND t.occurred_at >= ev.touch_at - interval '30 days'
    ORDER BY t.occurred_at DESC, t.id DESC LIMIT 1) touch ON ev.kind IN ('claim', 'redemption')"""
BUCKETS = {
    "day": ("local::date::text", ""),
    "hour": ("extract(hour FROM local)::int::text", ""),
    "area": (
        "CASE WHEN kind = 'impression' THEN coalesce(" + AREA.format(cell="ev.h3_cell") + ", 'unknown') "
        "ELSE coalesce(" + AREA.format(cell="seen.seen_cell") + ", 'unknown') END",
        LAST_SEEN,
    ),
    "source": (
        "CASE WHEN kind IN ('impression', 'click') THEN coalesce(ev.surface, 'unknown') "
        "WHEN touch_deal IS NULL THEN 'unknown' ELSE coalesce(touch.surface, 'unknown') END",
        LAST_TOUCH,
    ),
}
NUMBERS = ("users", "impressions", "clicks", "claims", "redemptions", "revenue_minor", "discount_minor")


def peer_insights(
    conn: psycopg.Connection[Any], by: str, merchant: int, first: date, last: date
) -> dict[str, tuple[int, ...]]:
    """Each bucket's NUMBERS from ``first`` to ``last``, local dates of the merchant's zone."""
    bucket, joins = BUCKETS[by]
    # A bound on the raw times wide enough for any zone; the local dates decide.
    lo = datetime.combine(first - timedelta(days=2), time(), UTC)
    hi = datetime.combine(last + timedelta(days=3), time(), UTC)
    params = {"m": merchant, "lo": lo, "hi": hi, "first": first, "last": last}
    with conn.cursor(row_factory=tuple_row) as cur:  # the peer app's connections make dicts
        rows = cur.execute(PEER.format(bucket=bucket, joins=joins), params).fetchall()  # type: ignore[arg-type]
    return {str(r[0]): tuple(int(v) for v in r[1:]) for r in rows}
