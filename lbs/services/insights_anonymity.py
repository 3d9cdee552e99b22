"""k-anonymity of insights: which buckets of a partition to hide so that none is known to fewer than k users.

A response shows a total and, beside it, partitions of it: its buckets (days, hours, areas,
sources) and its deals. A group seen by 1 to k-1 distinct users is hidden (all its numbers
null). Hiding it is not enough when the total is shown: total minus the visible groups is
what the hidden groups add up to, so those must together hold at least k distinct users.
While they hold fewer (one hidden group always does), the smallest visible group is hidden
too. So from one response no hidden group's counts can be worked out, and any sum that can
be worked out covers k users or more. What this does not guard against: differencing two
responses (two date ranges one day apart give that day's counts), and what a merchant knows
from elsewhere (its own till). See docs/insights.md.
"""

from __future__ import annotations

from collections.abc import Sequence

from lbs.services import insight_sets
from lbs.services.insight_sets import Ids

K = 5


def too_few(users: int, k: int = K) -> bool:
    """Seen by some users, but fewer than k: hidden."""
    return 0 < users < k


def hidden_groups(total_users: int, groups: Sequence[Ids], k: int = K) -> list[bool]:
    """For each group of a partition of a total (its users' ids), whether it is hidden.

    Every group with 1 to k-1 users is; when the total is shown, more are, smallest first
    (ties: the earlier), until the hidden ones hold no users or at least k between them.
    A hidden total hides every group with users (each has at most the total's)."""
    if too_few(total_users, k):
        return [len(g) > 0 for g in groups]
    hidden = [too_few(len(g), k) for g in groups]
    while True:
        together = len(insight_sets.union(g for g, h in zip(groups, hidden, strict=True) if h))
        if not too_few(together, k):
            return hidden
        visible = [i for i, g in enumerate(groups) if not hidden[i] and len(g) > 0]
        if not visible:  # only when the groups do not cover the total (deals, not deal-less events)
            return hidden
        hidden[min(visible, key=lambda i: (len(groups[i]), i))] = True
