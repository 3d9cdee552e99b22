"""Hypothesis strategies for nearby queries: centres anywhere, including the antimeridian and poles."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from hypothesis import strategies as st

from lbs.categories import N_CATEGORIES
from lbs.geo.h3index import Box, Hit, NearbyIndex
from tests.oracle import Points, destination, haversine_m

# The default tree, a single level, and other mixes of coarse and fine levels.
RESOLUTIONS = [(7, 9, 11), (8,), (6, 9), (7, 8, 9, 10, 11)]
# A handful of categories, so that filters keep some points and drop others.
N_USED_CATEGORIES = 4

any_lat = st.floats(-90.0, 90.0)
any_lon = st.floats(-180.0, 180.0)
near_antimeridian = st.floats(179.0, 180.0) | st.floats(-180.0, -179.0)
near_poles = st.floats(88.0, 90.0) | st.floats(-90.0, -88.0)

centres = st.one_of(
    st.tuples(any_lat, any_lon),
    st.tuples(st.floats(-89.0, 89.0), near_antimeridian),
    st.tuples(near_poles, any_lon),
    st.tuples(st.sampled_from([-90.0, -89.0, 89.0, 90.0]), any_lon | st.sampled_from([-180.0, 180.0])),
    st.tuples(near_poles, near_antimeridian),
)
category_filters = st.none() | st.sets(st.integers(0, N_USED_CATEGORIES - 1), min_size=1).map(sorted)


def build_index(
    ids: Sequence[int],
    lats: Sequence[float],
    lons: Sequence[float],
    categories: Sequence[int],
    resolutions: Sequence[int] = RESOLUTIONS[0],
) -> NearbyIndex:
    return NearbyIndex(N_CATEGORIES, ids, lats, lons, categories, resolutions=resolutions)


@dataclass(frozen=True)
class Scenario:
    lat: float
    lon: float
    radius_m: float
    ids: list[int]
    lats: list[float]
    lons: list[float]
    categories: list[int]
    category_filter: list[int] | None
    resolutions: tuple[int, ...]

    def index(self) -> NearbyIndex:
        return build_index(self.ids, self.lats, self.lons, self.categories, self.resolutions)

    def points(self) -> Points:
        eligible = [self.category_filter is None or c in self.category_filter for c in self.categories]
        return Points.of(self.ids, self.lats, self.lons, eligible)


@st.composite
def scenarios(draw: st.DrawFn, max_points: int = 80) -> Scenario:
    """A query and data around it: inside, outside, on the boundary, at shared positions, far away."""
    lat, lon = draw(centres)
    radius_m = draw(st.floats(1.0, 50_000.0) | st.sampled_from([1.0, 50_000.0]))
    # Anywhere out to 1.6 radii, or in a band of +-3% around the boundary where cells cross it.
    shares = st.floats(0.0, 1.6) | st.floats(0.97, 1.03)
    near = draw(
        st.lists(
            st.tuples(st.floats(0.0, 360.0), shares, st.integers(0, N_USED_CATEGORIES - 1)),
            max_size=max_points,
        )
    )
    positions = [destination(lat, lon, bearing, share * radius_m) for bearing, share, _ in near]
    cats = [c for _, _, c in near]
    for far_lat, far_lon, c in draw(st.lists(st.tuples(any_lat, any_lon, st.integers(0, 3)), max_size=5)):
        positions.append((far_lat, far_lon))
        cats.append(c)
    if positions:
        for pick, c in draw(st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 3)), max_size=15)):
            positions.append(positions[pick % len(positions)])
            cats.append(c)
        # Put the boundary exactly on a point, or a millimetre either side of it.
        snap = draw(st.none() | st.tuples(st.integers(0, 10**6), st.sampled_from([0.0, 1e-3, -1e-3])))
        if snap is not None:
            p_lat, p_lon = positions[snap[0] % len(positions)]
            snapped = float(haversine_m(lat, lon, [p_lat], [p_lon])[0]) + snap[1]
            if 1e-3 <= snapped <= 50_000.0:
                radius_m = snapped
    ids = draw(st.lists(st.integers(1, 2**62), min_size=len(positions), max_size=len(positions), unique=True))
    return Scenario(
        lat=lat,
        lon=lon,
        radius_m=radius_m,
        ids=ids,
        lats=[p[0] for p in positions],
        lons=[p[1] for p in positions],
        categories=cats,
        category_filter=draw(category_filters),
        resolutions=draw(st.sampled_from(RESOLUTIONS)),
    )


def ids_and_distances(hits: Sequence[Hit]) -> tuple[list[int], list[float]]:
    return [h.id for h in hits], [h.distance_m for h in hits]


Point = tuple[int, float, float, int]  # id, lat, lng, category


def inside(box: Box, lat: float, lng: float) -> bool:
    if not box.min_lat <= lat <= box.max_lat:
        return False
    if box.min_lng <= box.max_lng:
        return box.min_lng <= lng <= box.max_lng
    return lng >= box.min_lng or lng <= box.max_lng


def _wrap(lng: float) -> float:
    return (lng + 180.0) % 360.0 - 180.0


@st.composite
def box_worlds(draw: st.DrawFn) -> tuple[list[Point], Box, tuple[int, ...]]:
    """A box and points in and around it: spread out, crowded into a few cells, on its edges."""
    lat, lng = draw(centres)
    half_lat = draw(st.floats(0.0001, 2.0))
    half_lng = draw(st.floats(0.0001, 4.0))
    box = Box(
        min_lng=_wrap(lng - half_lng),
        min_lat=max(-90.0, lat - half_lat),
        max_lng=_wrap(lng + half_lng),
        max_lat=min(90.0, lat + half_lat),
    )
    spots = draw(
        st.lists(
            st.tuples(
                st.floats(0.0, 360.0),
                st.floats(0.0, 400_000.0) | st.floats(0.0, 3_000.0) | st.floats(0.0, 300.0),
                st.integers(0, N_USED_CATEGORIES - 1),
            ),
            max_size=80,
        )
    )
    points = [(k + 1, *destination(lat, lng, b, d), c) for k, (b, d, c) in enumerate(spots)]
    # Some exactly on the edges and corners.
    edges = draw(
        st.lists(
            st.tuples(
                st.sampled_from([box.min_lat, box.max_lat, lat]),
                st.sampled_from([box.min_lng, box.max_lng, lng]),
                st.integers(0, N_USED_CATEGORIES - 1),
            ),
            max_size=12,
        )
    )
    points += [(len(points) + k + 1, a, b, c) for k, (a, b, c) in enumerate(edges)]
    return points, box, draw(st.sampled_from(RESOLUTIONS))


def index_of(points: Sequence[Point], resolutions: tuple[int, ...]) -> NearbyIndex:
    return build_index(
        [p[0] for p in points],
        [p[1] for p in points],
        [p[2] for p in points],
        [p[3] for p in points],
        resolutions,
    )
