"""`lbs evaluate`: the offline protocol on check-in files, ranked through the service's own index.

Candidates are what lbs.geo.h3index.NearbyIndex (the index /v1/nearby uses) finds over
the venues, bit for bit: found by lbs.geo.radius_grid, which answers a city's thousands
of 2 km queries in bulk; the protocol, baselines and metrics come from recommender/.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from lbs.errors import InputFileError
from lbs.geo.distance import chord2_to_m
from lbs.geo.radius_grid import RadiusGrid
from recommender import training
from recommender.baselines import (
    als_ranker,
    baseline_rankers,
    lbs_ranker,
)
from recommender.evaluation import Checkins, FloatArray, IntArray, build_cases, evaluate, train_cutoff
from recommender.nearby import Keyed, Nearby


@dataclass(frozen=True)
class Venues:
    ids: IntArray
    lats: FloatArray
    lons: FloatArray


def _read_table(path: Path, columns: str) -> npt.NDArray[np.float64]:
    """Rows of at least three tab-separated numbers; anything else raises InputFileError."""
    try:
        table = np.loadtxt(path, delimiter="\t", dtype=np.float64, ndmin=2)
    except ValueError as exc:
        raise InputFileError(
            path, f"not tab-separated numbers ({exc})", f"give a file of lines: {columns}"
        ) from None
    if table.shape[1] < 3:
        raise InputFileError(
            path, f"{table.shape[1]} column(s) where 3 are read", f"give a file of lines: {columns}"
        )
    return table


def read_checkins(path: Path) -> Checkins:
    """user, venue, unix time, tab-separated."""
    table = _read_table(path, "user, venue, unix time (tab-separated, as Foursquare_checkins.txt)")
    return Checkins.of(table[:, 0].astype(np.int64), table[:, 1].astype(np.int64), table[:, 2])


def read_venues(path: Path) -> Venues:
    """venue, latitude, longitude, tab-separated."""
    table = _read_table(path, "venue, latitude, longitude (tab-separated, as Foursquare_poi_coos.txt)")
    return Venues(table[:, 0].astype(np.int64), table[:, 1], table[:, 2])


class VenuesAround:
    """Every venue within a radius of another, as the nearby index finds them (exact,
    nearest first, ties by id): whole lists, or a NearbySource for training's few of many."""

    def __init__(self, venues: Venues, radius_m: float) -> None:
        self._grid = RadiusGrid(venues.ids, venues.lats, venues.lons, radius_m)
        by_id = np.argsort(venues.ids, kind="stable")
        self._ids = venues.ids[by_id]
        self._lats, self._lons = venues.lats[by_id], venues.lons[by_id]

    def nearby(self, origin: int) -> Nearby:
        at = int(np.searchsorted(self._ids, origin))
        if at == len(self._ids) or self._ids[at] != origin:
            return _NOTHING
        return _Around(self._grid, float(self._lats[at]), float(self._lons[at]))

    def __call__(self, origin: int) -> tuple[IntArray, FloatArray]:
        near = self.nearby(origin)
        return near.take(np.arange(len(near)))


_NOTHING = Keyed(np.empty(0, dtype=np.int64), np.empty(0), chord2_to_m)


class _Around:
    """The venues around one place, found only when asked for: a visit outside the radius
    (a third of the validation cases in a city) costs one distance, not a query."""

    def __init__(self, grid: RadiusGrid, lat: float, lng: float) -> None:
        self._grid, self._lat, self._lng = grid, lat, lng

    @cached_property
    def _found(self) -> Keyed:
        ids, chord2 = self._grid.within(self._lat, self._lng)
        return Keyed(ids, chord2, chord2_to_m)

    def __len__(self) -> int:
        return len(self._found)

    def position(self, item: int) -> int:
        chord2 = self._grid.chord2(self._lat, self._lng, item)
        if chord2 is None or chord2 > self._grid.max_c2:
            return -1
        return self._found.position(item)

    def take(self, positions: IntArray) -> tuple[IntArray, FloatArray]:
        return self._found.take(positions)


def candidate_source(venues: Venues, radius_m: float) -> VenuesAround:
    """origin venue -> every venue within radius_m of it (exact, nearest first, ties by id)."""
    return VenuesAround(venues, radius_m)


def run(
    checkins_path: Path,
    pois_path: Path,
    radius_m: float,
    params: training.TrainParams | None = None,
    progress: training.Progress | None = None,
) -> dict[str, Any]:
    checkins = read_checkins(checkins_path)
    venues = read_venues(pois_path)
    known = np.isin(checkins.venues, venues.ids)
    skipped_no_position = int((~known).sum())
    checkins = checkins.subset(known)
    shape = (int(checkins.users.max()) + 1, int(max(checkins.venues.max(), venues.ids.max())) + 1)
    cutoff = train_cutoff(checkins.times)
    train = checkins.subset(checkins.times < cutoff)

    candidates = candidate_source(venues, radius_m)
    started = time.perf_counter()
    model = training.train(
        training.Interactions.visits_only(train.users, train.venues, train.times),
        candidates,
        params,
        progress,
    )
    train_seconds = time.perf_counter() - started

    found = build_cases(checkins, cutoff, candidates)
    rankers = {
        **baseline_rankers(train, shape),
        "als": als_ranker(model),
        "lbs": lbs_ranker(model, checkins),
    }
    result = evaluate(found.cases, rankers)
    considered = found.test_checkins
    return {
        "radius_m": radius_m,
        "cases": result["cases"],
        "outside_radius_share": found.skipped["outside_radius"] / considered if considered else 0.0,
        "skipped": {**dict(found.skipped), "venue_without_position": skipped_no_position},
        "methods": result["methods"],
        "discovery": result["discovery"],
        "train_seconds": train_seconds,
    }


def table(result: dict[str, Any]) -> str:
    """The printed summary: one row per method, all cases and discovery cases."""
    lines = [
        f"radius {result['radius_m']:g} m: {result['cases']:,} cases "
        f"({result['discovery']['cases']:,} discovery); outside the radius: "
        f"{result['outside_radius_share']:.1%} of test check-ins",
        f"{'method':<14} {'HR@10':>7} {'NDCG@10':>8} {'MRR':>7}   {'disc NDCG@10':>12}",
    ]
    for name, metrics in result["methods"].items():
        discovery = result["discovery"]["methods"][name]["ndcg@10"]
        lines.append(
            f"{name:<14} {metrics['hr@10']:>7.4f} {metrics['ndcg@10']:>8.4f} {metrics['mrr']:>7.4f}"
            f"   {discovery:>12.4f}"
        )
    return "\n".join(lines)


def plot(result: dict[str, Any], path: Path) -> None:
    """NDCG@10 by method, all cases beside discovery cases, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")  # no display: write the file only
    import matplotlib.pyplot as plt

    names = list(result["methods"])
    overall = [result["methods"][n]["ndcg@10"] for n in names]
    discovery = [result["discovery"]["methods"][n]["ndcg@10"] for n in names]
    x = np.arange(len(names))
    figure, axes = plt.subplots(figsize=(7, 4))
    axes.bar(x - 0.2, overall, width=0.4, label=f"all ({result['cases']:,} cases)")
    axes.bar(x + 0.2, discovery, width=0.4, label=f"discovery ({result['discovery']['cases']:,})")
    axes.set_xticks(x, names)
    axes.set_ylabel("NDCG@10")
    axes.set_title(f"Next check-in within {result['radius_m']:g} m")
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
