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

from collections.abc import Callable, Sequence

K = 5


def too_few(users: int, k: int = K) -> bool:
    """Seen by some users, but fewer than k: hidden."""
    return 0 < users < k


def hidden_groups(
    total_users: int, users: Sequence[int], together: Callable[[list[int]], int], k: int = K
) -> list[bool]:
    """For each group of a partition of a total, whether it is hidden. ``users``: each
    group's distinct users; ``together(indexes)``: the distinct users of those groups.

    Every group with 1 to k-1 users is; when the total is shown, more are, smallest first
    (ties: the earlier), until the hidden ones hold no users or at least k between them.
    A hidden total hides every group with users (each has at most the total's)."""
    if too_few(total_users, k):
        return [n > 0 for n in users]
    hidden = [too_few(n, k) for n in users]
    while too_few(together([i for i, h in enumerate(hidden) if h]), k):
        visible = [i for i, n in enumerate(users) if not hidden[i] and n > 0]
        if not visible:  # only when the groups do not cover the total (deals, not deal-less events)
            break
        hidden[min(visible, key=lambda i: (users[i], i))] = True
    return hidden
