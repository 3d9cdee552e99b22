"""The one frozen Settings object, built from LBS_* environment variables."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

from sqlalchemy import make_url
from sqlalchemy.exc import ArgumentError

MAX_RADIUS_M = 50_000
MAX_LIMIT = 100


DATABASE_URL_FORMS = "sqlite:///PATH or postgresql+psycopg://USER[:PASSWORD]@HOST:5432/DBNAME"


def _check_database_url(name: str, url: str) -> None:
    """A URL SQLAlchemy cannot parse, or of a database lbs does not run on, is a configuration
    error (said without the value, which may hold a password)."""
    if not url and name == "database_read_url":
        return
    try:
        backend = make_url(url).get_backend_name()
    except ArgumentError:
        backend = ""
    if backend not in ("sqlite", "postgresql"):
        raise ValueError(
            f"LBS_{name.upper()} is not a SQLite or PostgreSQL URL; expected {DATABASE_URL_FORMS}"
        )


@dataclass(frozen=True)
class Settings:
    """Every knob of the service; defaults run out of the box (SQLite in the working directory)."""

    database_url: str = "sqlite:///lbs.sqlite3"
    # A read replica of database_url (docs/scaling.md): GET, HEAD and OPTIONS requests, and
    # the nearby index and deal book they poll, read there; so a write reaches everyone's
    # reads within index_refresh_s plus the replica's lag. Empty: everything on database_url.
    database_read_url: str = ""
    # H3 resolutions of the nearby index tree, coarse to fine (7: ~5 km² cells; 11: ~2,000 m²).
    h3_resolutions: str = "7,9,11"
    # A worker polls the database for merchant writes at most this often; the documented
    # bound on how stale another worker's view can be.
    index_refresh_s: float = 1.0
    # Impressions and clicks of reads are written in batches this often (0: right after each
    # response); a crash loses at most this much. At most event_buffer_rows wait meanwhile.
    event_flush_s: float = 1.0
    event_buffer_rows: int = 100_000
    # Per worker, the rows of the merchants most recently shown (kept as fresh as the
    # index: dropped when its poll sees a write), so that a page reads no merchant row.
    merchant_cache_size: int = 50_000
    # Per worker, MB of cluster answers (lbs.services.view_cache), each used only while
    # the index and the deals it was computed from hold. 0: off.
    view_cache_mb: float = 16.0
    # Per worker, the recent visits of this many users, for sort=relevance: forgotten when the
    # index's poll sees a new visit of theirs, and at the latest after visits_cache_s (0: off).
    visits_cache_users: int = 20_000
    visits_cache_s: float = 60.0
    # A user token's user is remembered this long by a worker: a replaced token works on
    # that long at most on the other workers (services.user_tokens).
    user_cache_s: float = 60.0
    # sha256 hex digest of the operator bearer token; empty disables operator endpoints.
    operator_token_sha256: str = ""
    # Signs voucher QR codes and derives voucher codes; keep it stable and secret. Empty:
    # read from secret_key_file, which the first process creates (mode 0600).
    secret_key: str = ""
    secret_key_file: str = "lbs-secret.key"
    # Rate limits (the `limits` library's notation): redemptions per merchant API key,
    # claims per user token, new users per client address (else per-user limits are moot).
    rate_limit_redeem: str = "30/minute"
    rate_limit_claim: str = "30/minute"
    rate_limit_new_users: str = "30/minute"
    # Reports of reviews and of harassment, per user token or (anonymous) per client address.
    rate_limit_reports: str = "10/minute"
    # database: counters in the service's database, one count for every worker and host;
    # redis://host:6379 the same without database writes; memory:// counts per worker
    # process (a caller gets W times each limit with W workers: for tests).
    rate_limit_storage: str = "database"
    # Trained models (`lbs train` writes, workers read): a worker checks for a newer one at
    # most every model_reload_s seconds, the documented delay before it is in use.
    model_dir: str = "lbs-models"
    model_reload_s: float = 10.0
    # sort=relevance: a claimable deal adds rank_deal_weight x (0.5 + discount share) to
    # the model's score; every round(1 / share)-th place goes to a merchant without history.
    rank_deal_weight: float = 0.5
    rank_exploration_share: float = 0.1
    # Origins whose pages may call the public read endpoints (a map widget embedded in a
    # site): "*" for any, else comma-separated origins (https://shop.example,https://x.fi).
    cors_origins: str = "*"
    # Who may read /metrics: "operator" (the operator's bearer token, which Prometheus can
    # send: authorization.credentials_file) or "public" (behind a network that restricts it).
    metrics_access: str = "operator"
    # Base map tiles for /map (a Leaflet URL template, e.g.
    # https://tile.openstreetmap.org/{z}/{x}/{y}.png); empty: a plain background.
    map_tiles_url: str = ""
    # Serving (docs/operations.md): a request has request_timeout_s from the arrival of its
    # last byte; past it, it stops with a 503 and Retry-After (queued that long: not run at
    # all), and no database statement runs beyond it. 0 turns deadlines off. Each gunicorn
    # worker serves `threads` requests at once and keeps a database connection per thread.
    # Payments (docs/payments.md). payment_provider "stripe" takes payments for prepaid deals
    # (with stripe_secret_key and stripe_webhook_secret); "" takes none, and deals are paid at
    # the counter. stripe_api_base: another Stripe API (localstripe in the tests and the
    # demo); empty: Stripe itself. The secrets are never logged (repr=False).
    payment_provider: str = ""
    stripe_secret_key: str = field(default="", repr=False)
    stripe_webhook_secret: str = field(default="", repr=False)
    stripe_api_base: str = ""
    # How long an unpaid order holds its unit of stock; then it is released (lbs payments expire).
    payment_hold_s: float = 600.0
    # The platform's share of each redeemed prepaid voucher, in basis points (1000: 10 %).
    commission_bps: int = 1000
    request_timeout_s: float = 5.0
    threads: int = 2
    log_level: str = "INFO"
    bind: str = "127.0.0.1:8000"
    workers: int = 2
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("database_url", "database_read_url"):
            _check_database_url(name, getattr(self, name))
        if self.payment_provider not in ("", "stripe"):
            raise ValueError(
                f"LBS_PAYMENT_PROVIDER={self.payment_provider!r}: expected stripe or empty (none)"
            )
        if self.payment_provider and not (self.stripe_secret_key and self.stripe_webhook_secret):
            raise ValueError(
                "LBS_PAYMENT_PROVIDER=stripe needs LBS_STRIPE_SECRET_KEY and LBS_STRIPE_WEBHOOK_SECRET"
            )
        if not 0 <= self.commission_bps <= 10_000:
            raise ValueError(f"LBS_COMMISSION_BPS={self.commission_bps}: expected 0..10000 (basis points)")
        if self.payment_hold_s <= 0:
            raise ValueError(f"LBS_PAYMENT_HOLD_S={self.payment_hold_s}: expected more than 0 seconds")
        if self.metrics_access not in ("operator", "public"):
            raise ValueError(f"LBS_METRICS_ACCESS={self.metrics_access!r}: expected operator or public")
        try:
            resolutions = [int(r) for r in self.h3_resolutions.split(",")]
        except ValueError:
            resolutions = []
        if (
            not resolutions
            or resolutions != sorted(set(resolutions))
            or not 0 <= resolutions[0] <= resolutions[-1] <= 15
        ):
            raise ValueError(
                f"LBS_H3_RESOLUTIONS={self.h3_resolutions!r}: expected increasing H3 resolutions "
                "in 0..15, comma-separated, coarse to fine (e.g. 7,9,11)"
            )

    @property
    def allowed_origins(self) -> str | list[str]:
        origins = [o.strip() for o in self.cors_origins.split(",") if o.strip()]
        return "*" if origins in ([], ["*"]) else origins

    @property
    def resolutions(self) -> tuple[int, ...]:
        return tuple(int(r) for r in self.h3_resolutions.split(","))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            if f.name == "extra":
                continue
            raw = env.get(f"LBS_{f.name.upper()}")
            if raw is None:
                continue
            kind = type(getattr(cls, f.name))
            try:
                values[f.name] = kind(raw)
            except ValueError:
                raise ValueError(f"LBS_{f.name.upper()}={raw!r} is not a valid {kind.__name__}") from None
        return cls(**values)

    def with_overrides(self, overrides: Mapping[str, Any] | None) -> Settings:
        if not overrides:
            return self
        return replace(self, **overrides)
