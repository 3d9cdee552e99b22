"""The exception tree; every member renders as RFC 9457 application/problem+json."""

from __future__ import annotations

from typing import Any

PROBLEM_BASE = "https://lbs.dev/problems/"


class LbsError(Exception):
    """Base of every error the API reports to clients."""

    status = 500
    slug = "internal"
    title = "Internal error"

    def __init__(self, detail: str, **extensions: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extensions = extensions
        self.headers: dict[str, str] = {}

    def to_problem(self) -> dict[str, Any]:
        return {
            "type": PROBLEM_BASE + self.slug,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            **self.extensions,
        }


class InvalidParameter(LbsError):
    """A query, path or body field is missing, malformed or out of its allowed range."""

    status = 400
    slug = "invalid-parameter"
    title = "Invalid parameter"

    def __init__(self, field: str, detail: str, **extensions: Any) -> None:
        super().__init__(detail, field=field, **extensions)
        self.field = field


def where(error: dict[str, Any]) -> str:
    """'line N' for CSV rows, 'feature N' for GeoJSON features."""
    return f"line {error['line']}" if "line" in error else f"feature {error['feature']}"


class InvalidRows(LbsError):
    """An import file has bad rows; nothing of it was written."""

    status = 400
    slug = "invalid-rows"
    title = "Invalid rows"

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        lines = "; ".join(f"{where(e)}: {e['field']}: {e['message']}" for e in errors[:20])
        super().__init__(f"{len(errors)} bad row(s), nothing imported: {lines}", errors=errors)
        self.errors = errors


class Unauthorized(LbsError):
    status = 401
    slug = "unauthorized"
    title = "Missing or invalid credentials"


class Forbidden(LbsError):
    status = 403
    slug = "forbidden"
    title = "Not allowed"


class NotFound(LbsError):
    status = 404
    slug = "not-found"
    title = "Not found"


class NotReady(LbsError):
    status = 503
    slug = "not-ready"
    title = "Not ready"


class Conflict(LbsError):
    """The request is valid but the resource's current state does not allow it."""

    status = 409
    slug = "conflict"
    title = "Conflict"


class DealNotClaimable(Conflict):
    slug = "deal-not-claimable"
    title = "Deal not claimable"


class ClaimLimitReached(Conflict):
    slug = "claim-limit-reached"
    title = "Claim limit reached"


class InvalidTransition(Conflict):
    slug = "invalid-transition"
    title = "Not allowed in this status"


class FieldFrozen(Conflict):
    slug = "field-frozen"
    title = "Field frozen once claimed"


class VoucherAlreadyRedeemed(Conflict):
    slug = "voucher-already-redeemed"
    title = "Voucher already redeemed"


class VoucherExpired(Conflict):
    slug = "voucher-expired"
    title = "Voucher expired"


class VoucherRefunded(Conflict):
    slug = "voucher-refunded"
    title = "Voucher refunded"


class PrepaidDeal(Conflict):
    """A prepaid deal is claimed by ordering and paying, not by a free claim."""

    slug = "prepaid-deal"
    title = "Deal is paid online"


class NotPrepaid(Conflict):
    slug = "not-prepaid"
    title = "Deal is not paid online"


class NotRefundable(Conflict):
    slug = "not-refundable"
    title = "Not refundable"


class ReviewNotAllowed(Forbidden):
    """The caller may not write (or change) this review; ``reason`` says why, for clients:
    not_yours, not_redeemed, refunded, review_window_closed, edit_window_closed."""

    slug = "review-not-allowed"
    title = "Review not allowed"

    def __init__(self, detail: str, reason: str, **extensions: Any) -> None:
        super().__init__(detail, reason=reason, **extensions)
        self.reason = reason


class AlreadyReviewed(Conflict):
    slug = "already-reviewed"
    title = "Voucher already reviewed"


class AlreadyReplied(Conflict):
    slug = "already-replied"
    title = "Review already answered"


class PaymentDeclined(LbsError):
    status = 402
    slug = "payment-declined"
    title = "Payment declined"


class PaymentProviderUnavailable(LbsError):
    """The payment provider could not be reached or refused for now; retrying with the same
    Idempotency-Key is safe (nothing is charged twice)."""

    status = 503
    slug = "payment-provider-unavailable"
    title = "Payment provider unavailable"

    def __init__(self, detail: str, retry_after_s: int = 5) -> None:
        super().__init__(detail, retry_after_s=retry_after_s)
        self.headers["Retry-After"] = str(retry_after_s)


class PaymentProviderRefused(LbsError):
    """The payment provider refused the call itself (an amount below its minimum, say)."""

    status = 502
    slug = "payment-provider-refused"
    title = "Payment provider refused"


class IdempotencyKeyReused(LbsError):
    status = 422
    slug = "idempotency-key-reused"
    title = "Idempotency-Key reused for another request"


class TooManyRequests(LbsError):
    status = 429
    slug = "too-many-requests"
    title = "Too many requests"

    def __init__(self, detail: str, retry_after_s: int) -> None:
        super().__init__(detail, retry_after_s=retry_after_s)
        self.headers["Retry-After"] = str(retry_after_s)


class InputFileError(ValueError):
    """A file or directory an operator gave a command is not what it reads (an extract that
    is not PBF, a directory without the check-in files): not an API error; `lbs` prints
    ``str()``, one line naming the path, the problem and what to give instead."""

    def __init__(self, path: object, problem: str, hint: str) -> None:
        super().__init__(f"{path}: {problem}; {hint}")
        self.path = path
