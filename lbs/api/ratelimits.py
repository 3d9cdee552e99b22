"""Rate limits on claims, redemptions, new users and reports, counted by the `limits` library in the
configured storage.

When the storage cannot be reached (Redis down or frozen), each limit either lets requests
through uncounted or stops them with a 503 problem and Retry-After, never a 500
(docs/operations.md):

- **claims go on**: what a claim may take is held in the database whatever the count says
  (the deal's stock, its per-user limit);
- **new users, redemptions and reports stop**: their limits are what keeps one address from
  making users by the thousand to get around per-user limits, a merchant key from guessing
  voucher codes, and anyone from flooding moderation with reports.

A storage that hangs is given STORE_TIMEOUT_S per call, so a request waits no longer.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass

import limits
from limits.errors import StorageError
from limits.storage import Storage, storage_from_string
from limits.strategies import FixedWindowRateLimiter
from sqlalchemy import Engine

from lbs.config import Settings
from lbs.errors import NotReady, TooManyRequests
from lbs.services.rate_limit_counters import DatabaseStorage

log = logging.getLogger(__name__)

FAIL_OPEN = frozenset({"claim"})
DATABASE = "database"  # LBS_RATE_LIMIT_STORAGE: count in the service's own database
STORE_TIMEOUT_S = 1.0
RETRY_AFTER_S = 5


class RateLimitStoreUnavailable(NotReady):
    slug = "rate-limit-store-unavailable"
    title = "Rate-limit store unavailable"

    def __init__(self, what: str) -> None:
        super().__init__(
            f"the store that counts {what} attempts cannot be reached; retry later",
            retry_after_s=RETRY_AFTER_S,
        )
        self.headers["Retry-After"] = str(RETRY_AFTER_S)


@dataclass(frozen=True)
class RateLimits:
    limiter: FixedWindowRateLimiter
    claim: limits.RateLimitItem
    redeem: limits.RateLimitItem
    new_users: limits.RateLimitItem
    reports: limits.RateLimitItem

    @classmethod
    def from_settings(cls, settings: Settings, engine: Engine) -> RateLimits:
        parsed = {}
        for name in ("rate_limit_claim", "rate_limit_redeem", "rate_limit_new_users", "rate_limit_reports"):
            value = getattr(settings, name)
            try:
                parsed[name] = limits.parse(value)
            except ValueError:
                raise ValueError(
                    f"LBS_{name.upper()}={value!r}: expected a rate such as 30/minute or 1000/hour"
                ) from None
        timeout_s = settings.request_timeout_s
        storage = open_storage(settings.rate_limit_storage, engine, timeout_s, settings.threads)
        return cls(
            FixedWindowRateLimiter(storage),
            parsed["rate_limit_claim"],
            parsed["rate_limit_redeem"],
            parsed["rate_limit_new_users"],
            parsed["rate_limit_reports"],
        )

    def enforce(self, item: limits.RateLimitItem, who: str, what: str) -> None:
        """Count one attempt by ``who`` (a digest or an address, never a secret); 429 beyond the
        limit; when the store is unreachable, through (FAIL_OPEN) or 503."""
        try:
            if self.limiter.hit(item, what, who):
                return
            reset = self.limiter.get_window_stats(item, what, who).reset_time
        except StorageError as error:
            log.warning("rate-limit store unreachable (%s): %s", what, type(error.storage_error).__name__)
            if what in FAIL_OPEN:
                return
            raise RateLimitStoreUnavailable(what) from None
        retry_after = max(1, math.ceil(reset - time.time()))
        raise TooManyRequests(
            f"too many {what} attempts: at most {item}; retry in {retry_after} s", retry_after
        )

    def close(self) -> None:
        """Let go of the store's connections (a database store has a pool of its own)."""
        storage = self.limiter.storage
        if isinstance(storage, DatabaseStorage):
            storage.close()

    def store_reachable(self) -> bool:
        """Whether the storage answers (within STORE_TIMEOUT_S); always so in memory."""
        storage: Storage = self.limiter.storage
        try:
            return bool(storage.check())
        except Exception:  # the check's own failure is the answer
            return False


def open_storage(uri: str, engine: Engine, request_timeout_s: float = 0.0, pool_size: int = 2) -> Storage:
    """The storage of LBS_RATE_LIMIT_STORAGE, its errors wrapped as StorageError: "database"
    (the default: ``engine``'s database), or a `limits` URI, a Redis one bounded by
    STORE_TIMEOUT_S to connect and per command."""
    if uri == DATABASE:
        return DatabaseStorage.beside(engine, request_timeout_s, pool_size)
    options: dict[str, float] = {}
    if uri.startswith(("redis://", "rediss://", "redis+unix://")):
        options = {"socket_timeout": STORE_TIMEOUT_S, "socket_connect_timeout": STORE_TIMEOUT_S}
    storage = storage_from_string(uri, wrap_exceptions=True, **options)
    if not isinstance(storage, Storage):
        raise ValueError(f"LBS_RATE_LIMIT_STORAGE={uri!r}: an asynchronous storage; use a synchronous one")
    return storage
