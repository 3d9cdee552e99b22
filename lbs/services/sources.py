"""Rows imported from elsewhere, keyed by where they came from (source_ref: "osm:node/123")."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from lbs.db import IN_CHUNK
from lbs.models import Merchant, User


def ids_by_source_ref(
    session: Session, model: type[Merchant] | type[User], refs: Sequence[str]
) -> dict[str, int]:
    """source_ref -> id, for those of ``refs`` that were imported into ``model``'s table."""
    found: dict[str, int] = {}
    for start in range(0, len(refs), IN_CHUNK):
        query = select(model.source_ref, model.id).where(model.source_ref.in_(refs[start : start + IN_CHUNK]))
        found.update((ref, row_id) for ref, row_id in session.execute(query) if ref is not None)
    return found
