"""SQLAlchemy 2 typed mappings, one module per concept: the rows and nothing beyond them."""

from lbs.models.base import Base, BigId, UTCDateTime
from lbs.models.deals import Deal, UserDealClaims, Voucher
from lbs.models.events import Event
from lbs.models.identity import DatabaseIdentity
from lbs.models.insights import InsightDay, InsightProgress
from lbs.models.merchants import Merchant, MerchantApiKey, RevisionCounter, merchant_geography
from lbs.models.payments import Order, ProviderEventSeen, Refund, SettlementPayout
from lbs.models.rate_limits import RateLimitCounter
from lbs.models.reviews import HarassmentReport, MerchantRating, Review, ReviewReport
from lbs.models.users import User

__all__ = [
    "Base",
    "BigId",
    "DatabaseIdentity",
    "Deal",
    "Event",
    "HarassmentReport",
    "InsightDay",
    "InsightProgress",
    "Merchant",
    "MerchantApiKey",
    "MerchantRating",
    "Order",
    "ProviderEventSeen",
    "RateLimitCounter",
    "Refund",
    "Review",
    "ReviewReport",
    "RevisionCounter",
    "SettlementPayout",
    "UTCDateTime",
    "User",
    "UserDealClaims",
    "Voucher",
    "merchant_geography",
]
