"""Proximal operators, each written once: ``prox_{s·g}(v) = argmin_x ½||x - v||² + s·g(x)``.

Thresholds are already multiplied by the step (``s·strength``); tensors or scalars broadcast against ``v``.
``positive=True`` adds the constraint ``x ≥ 0`` (the prox of a separable penalty plus the positivity indicator is
the penalty's prox followed by the clamp for these penalties, which are even and increasing in ``|x|``).
"""
from __future__ import annotations

import numpy as np
import torch

Threshold = float | torch.Tensor


def prox_positive(v: torch.Tensor) -> torch.Tensor:
    """Projection onto ``x ≥ 0``.

    Examples
    --------
    >>> prox_positive(torch.tensor([-1.0, 2.0])).tolist()
    [0.0, 2.0]
    """
    return torch.clamp(v, min=0.0)


def prox_l1(v: torch.Tensor, threshold: Threshold, positive: bool = False) -> torch.Tensor:
    """Soft thresholding: prox of ``threshold * ||x||_1`` (restricted to ``x ≥ 0`` when ``positive``).

    Examples
    --------
    >>> prox_l1(torch.tensor([-3.0, 0.5, 2.0]), 1.0).tolist()
    [-2.0, 0.0, 1.0]
    >>> prox_l1(torch.tensor([-3.0, 0.5, 2.0]), 1.0, positive=True).tolist()
    [0.0, 0.0, 1.0]
    """
    if positive:
        return torch.clamp(v - threshold, min=0.0)
    return torch.sign(v) * torch.clamp(v.abs() - threshold, min=0.0)


def prox_l2(v: torch.Tensor, threshold: Threshold, positive: bool = False) -> torch.Tensor:
    """Prox of ``threshold/2 * ||x||²`` (ridge shrinkage), restricted to ``x ≥ 0`` when ``positive``.

    Examples
    --------
    >>> prox_l2(torch.tensor([-2.0, 4.0]), 1.0).tolist()
    [-1.0, 2.0]
    """
    return (torch.clamp(v, min=0.0) if positive else v) / (1 + threshold)


def prox_elastic_net(v: torch.Tensor, l1: Threshold, l2: Threshold, positive: bool = False) -> torch.Tensor:
    """Prox of ``l1 * ||x||_1 + l2/2 * ||x||²``: soft thresholding then ridge shrinkage.

    Examples
    --------
    >>> prox_elastic_net(torch.tensor([-3.0, 0.5, 3.0]), 1.0, 1.0).tolist()
    [-1.0, 0.0, 1.0]
    """
    return prox_l1(v, l1, positive) / (1 + l2)


def prox_nuclear_positive(m: torch.Tensor, tau: float, n_iter: int = 30) -> torch.Tensor:
    """argmin_X ½||X - m||² + τ||X||_* + 1{X ≥ 0} by Dykstra's alternating projections (two prox operators).

    A fixed, small number of ``D x D`` SVDs, independent of the data size.

    Examples
    --------
    >>> m = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
    >>> prox_nuclear_positive(m, 0.5).tolist()
    [[1.5, 0.0], [0.0, 0.5]]
    """
    x, p, q = m, torch.zeros_like(m), torch.zeros_like(m)
    for _ in range(n_iter):
        u, s, vh = torch.linalg.svd(x + p, full_matrices=False)
        y = (u * torch.clamp(s - tau, min=0.0)) @ vh
        p = x + p - y
        x_new = torch.clamp(y + q, min=0.0)
        q = y + q - x_new
        if torch.allclose(x_new, x, atol=1e-12, rtol=1e-9):
            x = x_new
            break
        x = x_new
    return x


def prox_group_l1(values: np.ndarray, block_id: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """Group soft thresholding of the rows of ``values`` (n, B): block g shrinks by ``max(0, 1 - thr_g / ||v_g||)``.

    ``block_id`` (n,) numbers the blocks 0..G-1 and is sorted; ``thresholds`` is (G,) or (G, B). Returns a new array.

    Examples
    --------
    >>> prox_group_l1(np.array([[3.0], [4.0], [0.1]]), np.array([0, 0, 1]), np.array([1.0, 1.0])).ravel().round(6).tolist()
    [2.4, 3.2, 0.0]
    """
    n_blocks = int(block_id[-1]) + 1 if block_id.size else 0
    starts = np.searchsorted(block_id, np.arange(n_blocks))
    norms = np.sqrt(np.add.reduceat(values ** 2, starts, axis=0))  # (G, B)
    thr = thresholds if np.ndim(thresholds) == 2 else np.asarray(thresholds)[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = np.where(norms > thr, 1.0 - thr / norms, 0.0)
    return values * scale[block_id]


def prox_tv1d(y: list[float], lam: float) -> list[float]:
    """Exact prox of ``lam * sum |x[k+1] - x[k]|`` (Condat's direct algorithm, 2013/2017 version).

    Condat's algorithm is inherently sequential (it scans the signal once, occasionally restarting at the last
    segment start) and linear in the length, so it runs over the coefficients of one block of a model.

    Examples
    --------
    >>> prox_tv1d([0.0, 0.0, 3.0, 3.0], 0.5)
    [0.25, 0.25, 2.75, 2.75]
    """
    n = len(y)
    if n == 0 or lam <= 0.0:
        return list(y)
    out = [0.0] * n
    k = k0 = kplus = kminus = 0
    umin, umax = lam, -lam
    vmin, vmax = y[0] - lam, y[0] + lam
    twolam, minlam = 2.0 * lam, -lam
    while True:
        while k == n - 1:  # right boundary
            if umin < 0.0:  # vmin too high: negative jump
                while k0 <= kminus:
                    out[k0] = vmin
                    k0 += 1
                k = kminus = k0
                vmin = y[k]
                umin = lam
                umax = vmin + umin - vmax
            elif umax > 0.0:  # vmax too low: positive jump
                while k0 <= kplus:
                    out[k0] = vmax
                    k0 += 1
                k = kplus = k0
                vmax = y[k]
                umax = minlam
                umin = vmax + umax - vmin
            else:
                vmin += umin / (k - k0 + 1)
                while k0 <= k:
                    out[k0] = vmin
                    k0 += 1
                return out
        umin += y[k + 1] - vmin
        if umin < minlam:  # negative jump
            while k0 <= kminus:
                out[k0] = vmin
                k0 += 1
            k = kplus = kminus = k0
            vmin = y[k]
            vmax = vmin + twolam
            umin, umax = lam, minlam
            continue
        umax += y[k + 1] - vmax
        if umax > lam:  # positive jump
            while k0 <= kplus:
                out[k0] = vmax
                k0 += 1
            k = kplus = kminus = k0
            vmax = y[k]
            vmin = vmax - twolam
            umin, umax = lam, minlam
            continue
        k += 1  # no jump
        if umin >= lam:
            kminus = k
            vmin += (umin - lam) / (kminus - k0 + 1)
            umin = lam
        if umax <= minlam:
            kplus = k
            vmax += (umax + lam) / (kplus - k0 + 1)
            umax = minlam
