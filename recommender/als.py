"""ALS on implicit feedback (the `implicit` library): a factory picks the backend once.

The GPU backend is used when implicit was built with CUDA and a device is present;
otherwise the CPU one. Either way the result is plain numpy factors, so scoring and
saving never depend on the backend.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import numpy as np
import numpy.typing as npt
from implicit.als import AlternatingLeastSquares
from implicit.cpu.als import AlternatingLeastSquares as CpuAls
from scipy.sparse import csr_matrix
from threadpoolctl import threadpool_limits

FloatArray = npt.NDArray[np.float32]


@dataclass(frozen=True)
class AlsParams:
    factors: int = 64
    regularization: float = 0.05
    # Confidence of a positive: 1 + alpha x value (Hu, Koren and Volinsky).
    alpha: float = 20.0
    iterations: int = 10
    # Sweeps when continuing from factors already fitted on most of the same window
    # (training refits on the whole window after fitting on its first 90 %).
    refit_iterations: int = 5
    seed: int = 0
    # Sweeps cost (users + items) row solves each. A window of more rows than this budget
    # allows for iterations + refit_iterations sweeps gets proportionally fewer of both
    # (see within_budget): foursquare-us (13,000 rows) keeps 10 + 5; a 1M-merchant city
    # (700,000 rows, 2.9 s a sweep on one core) gets 4 + 2, whose held-out NDCG@10 is
    # within noise of 10 + 5's (docs/recommender.md).
    max_row_solves: int = 4_000_000

    def within_budget(self, rows: int) -> AlsParams:
        """These parameters with the sweeps cut to max_row_solves for ``rows`` rows."""
        wanted = rows * (self.iterations + self.refit_iterations)
        if wanted <= self.max_row_solves:
            return self
        share = self.max_row_solves / wanted
        return replace(
            self,
            iterations=max(1, round(self.iterations * share)),
            refit_iterations=max(1, round(self.refit_iterations * share)),
        )


def gpu_available() -> bool:
    try:
        import implicit.gpu

        return bool(implicit.gpu.HAS_CUDA)
    except ImportError:  # pragma: no cover - depends on how implicit was built
        return False


def make_als(params: AlsParams, use_gpu: bool | None = None, threads: int = 0) -> AlternatingLeastSquares:
    """The one place that chooses the backend: GPU if asked for or, by default, if present.
    ``threads`` (CPU; 0: every core) changes the speed, never the factors: each row is
    solved on its own."""
    gpu = gpu_available() if use_gpu is None else use_gpu
    return AlternatingLeastSquares(
        factors=params.factors,
        regularization=params.regularization,
        alpha=params.alpha,
        iterations=params.iterations,
        random_state=params.seed,
        use_gpu=gpu,
        **({} if gpu else {"num_threads": threads}),
    )


@dataclass(frozen=True)
class AlsModel:
    """Trained factors: rows of user_factors and item_factors follow the matrix's indices."""

    user_factors: FloatArray
    item_factors: FloatArray
    params: AlsParams

    def scores(self, user: int, items: npt.ArrayLike) -> FloatArray:
        """Affinity of one user for each of the given items (dot products)."""
        return np.asarray(self.item_factors[np.asarray(items, dtype=np.int64)] @ self.user_factors[user])

    def describe(self) -> dict[str, object]:
        return {"users": len(self.user_factors), "items": len(self.item_factors), **asdict(self.params)}


def train_als(
    user_items: csr_matrix,
    params: AlsParams | None = None,
    use_gpu: bool | None = None,
    start: AlsModel | None = None,
    threads: int = 0,
) -> AlsModel:
    """Fit ALS to a users x items matrix of interaction values (see interactions.py).

    With ``start`` (factors of the same shape, e.g. fitted on most of the same window),
    the CPU backend continues from them for ``refit_iterations`` sweeps instead of
    starting from random factors; the GPU backend always starts afresh.
    """
    params = params or AlsParams()
    # implicit parallelises over users itself; a BLAS thread pool underneath only contends
    # (implicit checks this when the model is made, so the limit covers both steps).
    with threadpool_limits(1, "blas"):
        model = make_als(params, use_gpu, threads)
        if start is not None and isinstance(model, CpuAls):
            if (
                start.user_factors.shape != (user_items.shape[0], params.factors)
                or len(start.item_factors) != user_items.shape[1]
            ):
                raise ValueError("start factors do not match the matrix's shape")
            model.iterations = params.refit_iterations
            model.user_factors = start.user_factors.copy()
            model.item_factors = start.item_factors.copy()
        model.fit(user_items, show_progress=False)
    if hasattr(model, "to_cpu"):
        model = model.to_cpu()
    return AlsModel(
        np.ascontiguousarray(model.user_factors, dtype=np.float32),
        np.ascontiguousarray(model.item_factors, dtype=np.float32),
        params,
    )
