"""Rate limits on claims and redemptions, counted by the `limits` library in configured storage."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import limits
from limits.storage import storage_from_string
from limits.strategies import FixedWindowRateLimiter

from lbs.config import Settings
from lbs.errors import TooManyRequests


@dataclass(frozen=True)
class RateLimits:
    limiter: FixedWindowRateLimiter
    claim: limits.RateLimitItem
    redeem: limits.RateLimitItem
    new_users: limits.RateLimitItem

    @classmethod
    def from_settings(cls, settings: Settings) -> RateLimits:
        parsed = {}
        for name in ("rate_limit_claim", "rate_limit_redeem", "rate_limit_new_users"):
            value = getattr(settings, name)
            try:
                parsed[name] = limits.parse(value)
            except ValueError:
                raise ValueError(
                    f"LBS_{name.upper()}={value!r}: expected a rate such as 30/minute or 1000/hour"
                ) from None
        storage = storage_from_string(settings.rate_limit_storage)
        return cls(
            FixedWindowRateLimiter(storage),
            parsed["rate_limit_claim"],
            parsed["rate_limit_redeem"],
            parsed["rate_limit_new_users"],
        )

    def enforce(self, item: limits.RateLimitItem, who: str, what: str) -> None:
        """Count one attempt by ``who`` (a digest or an address, never a secret); 429 beyond the limit."""
        if self.limiter.hit(item, what, who):
            return
        reset = self.limiter.get_window_stats(item, what, who).reset_time
        retry_after = max(1, math.ceil(reset - time.time()))
        raise TooManyRequests(
            f"too many {what} attempts: at most {item}; retry in {retry_after} s", retry_after
        )
