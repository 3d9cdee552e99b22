"""The books balance after any run of orders, payments, declines, refunds, redemptions,
expiries, late payments and payouts (hypothesis): lbs's own sums, the stock, a model the test
keeps of what it saw happen, and localstripe's money all agree, after every step."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager

from flask_openapi3 import OpenAPI
from hypothesis import HealthCheck, event, given, settings, target
from hypothesis import strategies as st

from tests.lbs.payments.books_run import start_run

MAX_STEPS = 30


@settings(max_examples=20, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_books_balance_after_any_run(
    fresh_pay_app: Callable[[], AbstractContextManager[OpenAPI]], data: st.DataObject
) -> None:
    with fresh_pay_app() as app:  # a database of its own for each example
        run = start_run(app)
        for _ in range(data.draw(st.integers(1, MAX_STEPS), label="steps")):
            kind = data.draw(st.sampled_from(run.steps()), label="step")
            getattr(run, kind)(data.draw(st.integers(0, 40), label=kind))
            if kind != "advance":  # the clock alone changes nothing until a step reads it
                run.check()
        run.check_provider()
    # --hypothesis-show-statistics: how often a run reaches each state; and runs that reach
    # more of them (a payout takes a redemption, a week's end and a mark-paid) are sought.
    reached = {f"order {o.status}" + (f", voucher {o.voucher}" if o.voucher else "") for o in run.orders}
    reached |= set(run.seen) | {f"payouts: {min(len(run.payouts), 2)}"}
    for what in reached:
        event(what)
    target(len(reached) + 3 * len(run.payouts), label="states reached")
