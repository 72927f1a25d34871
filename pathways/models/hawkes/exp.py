"""Parametric Hawkes learners with exponential and sum-of-exponential kernels (torch underneath, CPU or CUDA).

Kernel: φ_ij(t) = Σ_u a^u_ij β_u e^{-β_u t}; ``adjacency_[i, j] = Σ_u a^u_ij`` (the kernel's L1 norm, tick's
convention). Baseline μ_i, optionally modulated per patient by covariates: μ_{p,i} = μ_i exp(z_p · γ_i).

The design (index structure linear in events, β-dependent values, least-squares statistics) lives in
:mod:`pathways.models.hawkes.design`; the least-squares and nuclear-penalised FISTA solvers in
:mod:`pathways.models.hawkes.solvers`, the SQUAREM-accelerated penalised EM and the profile search over the decays in
:mod:`pathways.models.hawkes.em_exp`, and the projected Newton
steps that replace the EM when the design is held as dense per-code blocks without covariates in
:mod:`pathways.models.hawkes.newton`.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse
import torch

from pathways.data.eventlog import EventLog
from pathways.device import resolve_device
from pathways.encode.sequences import Sequences
from pathways.errors import PathwaysInputError
from pathways.models.base import full_batch_fit
from pathways.models.hawkes.base import HawkesBase
from pathways.models.hawkes.design import _Tensors, build_design, least_squares_stats
from pathways.models.hawkes.em_exp import _EM, _State, profile_decays
from pathways.models.hawkes.solvers import _Layout, _Objective, fista_least_squares, solve_nuclear
from pathways.synthetic.hawkes import simulate_hawkes
from pathways.utils import SeedLike, logger

_PENALTIES = (None, "none", "l1", "l2", "elasticnet", "nuclear")
_METHODS = ("likelihood", "least-squares")


# ------------------------------------------------------------------------------------------------------------------
# estimators
# ------------------------------------------------------------------------------------------------------------------
class HawkesSumExpKernel(HawkesBase):
    """Multivariate Hawkes process with sum-of-exponential kernels φ_ij(t) = Σ_u a^u_ij β_u e^{-β_u t}.

    Parameters
    ----------
    decays : the K decays β_u (rate units: 1 / time unit of the data).
    penalty : None, ``"l1"`` (sparse), ``"l2"``, ``"elasticnet"`` or ``"nuclear"`` (low rank, per component).
    C : inverse penalty strength (tick's convention: objective = loss per event + pen / C).
    fit_method : ``"likelihood"`` (default; warm-started from least squares) or ``"least-squares"``.
    learn_decay : also learn the decays (likelihood fit; not with the nuclear penalty).
    covariates : names of patient covariates modulating the baseline log-linearly: columns of ``log.patients``;
        ``"age"`` is computed at observation start from ``birth`` (in years when the log is in days) and ``"sex"``
        is 1 for ``"F"``, 0 for ``"M"``. With Sequences input pass ``covariate_values`` to ``fit``. Covariates are
        standardised; ``baseline_`` is the baseline at the average patient. Likelihood fit only.
    elastic_net_ratio : L1 share of the elastic-net penalty.
    max_iter, tol : iteration budget and relative tolerance of the solver.
    accelerate : SQUAREM extrapolation of the EM iterations (likelihood fit); False = plain EM. A design held as
        dense per-code blocks (few codes, long realizations) without covariates is fitted by projected Newton
        steps instead (same stopping rule), whatever this flag.
    device : ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"auto"``.
    verbose : log solver progress on the ``pathways`` logger.

    Attributes
    ----------
    baseline_ : (D,) baseline intensities.  adjacency_ : (D, D) kernel norms, [target, source].
    component_adjacency_ : (K, D, D) per-decay norms a^u.  decays_ : (K,) decays used (learned or given).
    covariate_coef_ : (D, q) baseline log-rate coefficients per standardised covariate (when ``covariates``).
    codes_, vocab_ : code order of rows/columns.  n_iter_, converged_, history_, objective_ : convergence report.

    Examples
    --------
    >>> from pathways.synthetic import simulate_hawkes
    >>> seqs = simulate_hawkes(np.array([0.2, 0.1]), np.array([[0.3, 0.0], [0.5, 0.2]]), end=500.0,
    ...                        n_sequences=20, seed=0)
    >>> model = HawkesExpKernel(decay=1.0).fit(seqs)
    >>> model.adjacency_.shape
    (2, 2)
    """

    def __init__(self, decays: Sequence[float] = (0.5, 2.0), penalty: str | None = None, C: float = 1e3,
                 fit_method: str = "likelihood", learn_decay: bool = False, covariates: Sequence[str] | None = None,
                 elastic_net_ratio: float = 0.95, max_iter: int = 500, tol: float = 1e-8, accelerate: bool = True,
                 device: str = "cpu", verbose: bool = False):
        self.decays = decays
        self.penalty = penalty
        self.C = C
        self.fit_method = fit_method
        self.learn_decay = learn_decay
        self.covariates = covariates
        self.elastic_net_ratio = elastic_net_ratio
        self.max_iter = max_iter
        self.tol = tol
        self.accelerate = accelerate
        self.device = device
        self.verbose = verbose

    # -- parameters -----------------------------------------------------------------------------------------------
    def _init_decays(self) -> np.ndarray:
        try:
            decays = np.atleast_1d(np.asarray(self.decays, dtype=np.float64))
        except (TypeError, ValueError):
            raise PathwaysInputError(f"decays: expected positive finite values, got {self.decays!r}") from None
        if decays.ndim != 1 or decays.size == 0 or not np.all(np.isfinite(decays)) or np.any(decays <= 0):
            raise PathwaysInputError(f"decays: expected positive finite values, got {self.decays!r}")
        if np.unique(decays).size < decays.size:
            # two components with one decay are the same kernel: their split of the adjacency is not identified
            raise PathwaysInputError(f"decays: expected distinct values, got {self.decays!r}")
        return decays

    def _check_params(self) -> None:
        if self.penalty not in _PENALTIES:
            raise PathwaysInputError(f"penalty: expected one of {_PENALTIES}, got {self.penalty!r}")
        if self.fit_method not in _METHODS:
            raise PathwaysInputError(f"fit_method: expected one of {_METHODS}, got {self.fit_method!r}")
        if not (isinstance(self.C, (int, float)) and self.C > 0):
            raise PathwaysInputError(f"C: must be a positive number, got {self.C!r}")
        if not 0 <= self.elastic_net_ratio <= 1:
            raise PathwaysInputError(f"elastic_net_ratio: must be in [0, 1], got {self.elastic_net_ratio!r}")
        if int(self.max_iter) < 1 or not self.tol > 0:
            raise PathwaysInputError(f"max_iter/tol: need max_iter >= 1 and tol > 0, got {self.max_iter}, {self.tol}")
        if self.fit_method == "least-squares" and (self.learn_decay or self.covariates):
            raise PathwaysInputError("fit_method: learn_decay and covariates need fit_method='likelihood'")
        if self.learn_decay and self.penalty == "nuclear":
            raise PathwaysInputError("learn_decay: not available with penalty='nuclear'")
        self._init_decays()  # decay(s) checked with the other parameters, before any work

    def _device(self) -> torch.device:
        # one device policy for every torch model: "auto", "cpu", "cuda[:N]", unknown names rejected by name
        return resolve_device(self.device)

    @property
    def _penalty_kind(self) -> str | None:
        return None if self.penalty in (None, "none") else self.penalty

    # -- covariates -----------------------------------------------------------------------------------------------
    def _sequence_covariates(self, data: Any, seqs: Sequences, covariate_values: np.ndarray | None
                             ) -> np.ndarray | None:
        names = list(self.covariates or [])
        if not names:
            if covariate_values is not None:
                raise PathwaysInputError("covariate_values: set covariates=[...] names to use covariates")
            return None
        if covariate_values is not None:
            raw = np.asarray(covariate_values, dtype=np.float64)
            if raw.ndim == 1:
                raw = raw[:, None]
            if raw.shape != (len(seqs), len(names)):
                raise PathwaysInputError(f"covariate_values: expected shape ({len(seqs)}, {len(names)}), "
                                         f"got {raw.shape}")
        elif isinstance(data, EventLog):
            raw = _patient_covariates(data, names)[seqs.patient_index]
        else:
            raise PathwaysInputError("covariate_values: required with covariates when data is not an EventLog")
        bad = ~np.isfinite(raw)
        if bad.any():
            r, col = np.argwhere(bad)[0]
            raise PathwaysInputError(f"covariate '{names[col]}': {int(bad.sum())} missing or non-finite values, "
                                     f"first at sequence {int(r)}")
        if not hasattr(self, "covariate_mean_") or getattr(self, "_fitting", False):
            self.covariate_mean_ = raw.mean(0)
            self.covariate_scale_ = np.where(raw.std(0) > 0, raw.std(0), 1.0)
        return (raw - self.covariate_mean_) / self.covariate_scale_

    def _sequence_baselines(self, seqs: Sequences, covariates: np.ndarray | None) -> np.ndarray:
        base = np.broadcast_to(self.baseline_, (len(seqs), self.n_codes_)).copy()
        if covariates is not None:
            base *= np.exp(covariates @ self.covariate_coef_.T)
        return base

    # -- fitting --------------------------------------------------------------------------------------------------
    @full_batch_fit
    def fit(self, data: Any, validation: Any = None, *, end_times: Any = None,
            covariate_values: np.ndarray | None = None) -> HawkesSumExpKernel:
        """Fit on an EventLog, Sequences or tick's format (see :meth:`HawkesBase.fit`; ``validation`` is ignored).
        Returns self."""
        self._check_params()
        self._fitting = True
        try:
            return super().fit(data, validation, end_times=end_times, covariate_values=covariate_values)
        finally:
            self._fitting = False

    def _fit_sequences(self, seqs: Sequences, covariates: np.ndarray | None) -> None:
        decays, dev = self._init_decays(), self._device()
        total_time, counts = self._shard_sum(float(np.sum(seqs.end - seqs.start)),
                                             np.bincount(seqs.marks, minlength=seqs.n_codes))
        if total_time <= 0:
            raise PathwaysInputError("end: all observation windows have zero length")
        # decays fixed for the whole fit: compact storage (l* dropped once the values are made, float32 X when large)
        tensors = _Tensors(build_design(seqs), dev, compact=not self.learn_decay)
        rates = counts / total_time  # events per unit time, per code
        mu_scale = np.maximum(rates, 1.0 / total_time)  # natural unit of each baseline
        mu_floor = 1e-10 * mu_scale  # keeps every λ_k > 0 for events without history
        q = 0 if covariates is None else covariates.shape[1]
        gamma = np.zeros((seqs.n_codes, q))
        mu, a, report = self._least_squares(tensors, decays, rates, mu_floor)
        if self.fit_method == "likelihood":
            # warm start: least squares, kept away from 0 (zeros are fixed points of the EM updates)
            mu, a = np.maximum(mu, 0.5 * rates), a + 0.1 / a[:, :, 0].size
            solve = self._likelihood_nuclear if self._penalty_kind == "nuclear" else self._likelihood_em
            mu, a, gamma, decays, report = solve(tensors, decays, covariates, mu, a, gamma, mu_scale)
        self._store(mu, a, gamma, decays, covariates is not None, *report)

    def _shard_sum(self, *values: Any) -> tuple:
        """Sums over patients: the values themselves, or their totals over the ranks of a sharded fit
        (:func:`pathways.models.hawkes.distributed.fit_sharded` sets ``_shard_reducer``)."""
        reducer = getattr(self, "_shard_reducer", None)
        return values if reducer is None else reducer.sum(*values)

    def _least_squares(self, tensors: _Tensors, decays: np.ndarray, rates: np.ndarray, mu_floor: np.ndarray
                       ) -> tuple[np.ndarray, np.ndarray, tuple[int, bool, float]]:
        """FISTA on the least-squares contrast (the final fit, or the warm start of the likelihood fit)."""
        dev, d, k = tensors.device, rates.size, decays.size
        q, b = self._shard_sum(*least_squares_stats(tensors, decays))
        theta0 = torch.zeros(d, 1 + d * k, dtype=torch.float64, device=dev)
        theta0[:, 0] = torch.as_tensor(rates, device=dev)
        budget = int(self.max_iter) if self.fit_method == "least-squares" else min(int(self.max_iter), 300)
        n_events = max(self._shard_sum(tensors.design.n_events)[0], 1)
        ls, n_iter, converged, hist = fista_least_squares(
            q, b, theta0, n_events, torch.as_tensor(mu_floor, device=dev), self._penalty_kind,
            1.0 / float(self.C), float(self.elastic_net_ratio), budget, float(self.tol), k)
        self.history_ = [{"stage": "least-squares", "iter": 10 * i + 10, "objective": v} for i, v in enumerate(hist)]
        report = (n_iter, converged, hist[-1] if hist else float("nan"))
        return ls[:, 0].cpu().numpy(), ls[:, 1:].reshape(d, d, k).cpu().numpy(), report

    def _likelihood_em(self, tensors: _Tensors, decays: np.ndarray, covariates: np.ndarray | None, mu: np.ndarray,
                       a: np.ndarray, gamma: np.ndarray, mu_scale: np.ndarray) -> tuple:
        """EM on the penalised likelihood (profile search over the decays first when ``learn_decay``)."""
        em = _EM(tensors, covariates, self._penalty_kind, 1.0 / float(self.C), float(self.elastic_net_ratio),
                 int(self.max_iter), float(self.tol), 1e-10 * mu_scale, bool(self.accelerate), self._shard_sum)
        state = _State(*(torch.as_tensor(v, dtype=torch.float64, device=tensors.device) for v in (mu, a, gamma)))
        if self.learn_decay:
            state, decays = profile_decays(em, state, decays, self.history_)
        state = em.run(state, decays, self.history_)
        state.a = em.prune(state, decays)
        mu, a, gamma = (v.cpu().numpy() for v in (state.mu, state.a, state.gamma))
        return mu, a, gamma, decays, (state.n_iter, state.converged, state.objective)

    def _likelihood_nuclear(self, tensors: _Tensors, decays: np.ndarray, covariates: np.ndarray | None,
                            mu: np.ndarray, a: np.ndarray, gamma: np.ndarray, mu_scale: np.ndarray) -> tuple:
        """Proximal gradient on the likelihood with the nuclear penalty (μ scaled by the code rates)."""
        d, k = mu.size, decays.size
        layout = _Layout(d, k, gamma.shape[1])
        obj = _Objective(tensors, layout, decays, mu_scale, covariates, 1.0 / float(self.C), "nuclear",
                         float(self.elastic_net_ratio))
        theta = np.concatenate([mu / mu_scale, a.ravel(), gamma.ravel()])
        theta, n_iter, converged, objective = solve_nuclear(obj, theta, np.full(d, 1e-10), int(self.max_iter),
                                                            float(self.tol), self.history_)
        mu_s, a_t, g_t = layout.split(torch.as_tensor(theta))
        return mu_s.numpy() * mu_scale, a_t.numpy(), g_t.numpy(), decays, (n_iter, converged, objective)

    def _store(self, mu: np.ndarray, a: np.ndarray, gamma: np.ndarray, decays: np.ndarray, has_cov: bool,
               n_iter: int, converged: bool, objective: float) -> None:
        self.baseline_ = np.asarray(mu, dtype=np.float64)
        self.component_adjacency_ = np.ascontiguousarray(np.moveaxis(a, 2, 0))
        self.adjacency_ = self.component_adjacency_.sum(0)
        self.decays_ = np.asarray(decays, dtype=np.float64)
        if has_cov:
            self.covariate_coef_ = np.asarray(gamma, dtype=np.float64)
        self.n_iter_, self.converged_, self.objective_ = int(n_iter), bool(converged), float(objective)
        if not self.converged_:
            logger.warning("%s: solver stopped after %d iterations without reaching tol=%g",
                           type(self).__name__, self.n_iter_, self.tol)

    # -- hooks: likelihood pieces at the fitted parameters ----------------------------------------------------------
    def _fitted_values(self, seqs: Sequences) -> tuple[_Tensors, torch.Tensor, torch.Tensor]:
        tensors = _Tensors(build_design(seqs), torch.device("cpu"))
        x, g = tensors.values(torch.as_tensor(self.decays_, dtype=torch.float64))
        return tensors, x, g

    def _event_intensities(self, seqs: Sequences, baselines: np.ndarray) -> np.ndarray:
        tensors, x, _ = self._fitted_values(seqs)
        a = torch.as_tensor(np.moveaxis(self.component_adjacency_, 0, 2)).reshape(-1, self.decays_.size)
        exc = np.zeros(seqs.n_events)
        if x.shape[0]:
            exc = torch.zeros(seqs.n_events, dtype=torch.float64).index_add(
                0, tensors.row, (a[tensors.flat] * x).sum(1)).numpy()
        d = tensors.design
        return baselines[d.seq, d.code] + exc

    def _compensators(self, seqs: Sequences, baselines: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        tensors, x, _ = self._fitted_values(seqs)
        d, k = tensors.design, self.decays_.size
        beta = torch.as_tensor(self.decays_)
        a = torch.as_tensor(np.moveaxis(self.component_adjacency_, 0, 2)).reshape(-1, k)
        own = baselines[d.seq, d.code] * d.since_start
        if x.shape[0]:
            # ∫_{start}^{t_k} of the excitation = Σ_l (1 - e^{-β(t_k - t_l)}) = count - X / β
            integ = tensors.count[:, None] - x / beta[None, :]
            own = own + torch.zeros(seqs.n_events, dtype=torch.float64).index_add(
                0, tensors.row, (a[tensors.flat] * integ).sum(1)).numpy()
        tail = -np.expm1(-d.to_end[:, None] * self.decays_[None, :])  # (N, K)
        per_seq = np.zeros((len(seqs), self.n_codes_, k))
        np.add.at(per_seq, (d.seq, d.code), tail)
        total = baselines * d.duration[:, None] + np.einsum("pju,uij->pi", per_seq, self.component_adjacency_)
        return own, total

    def _kernel_columns(self, lags: np.ndarray, sources: np.ndarray) -> np.ndarray:
        lags = np.asarray(lags, dtype=np.float64)
        dens = np.where(lags[:, None] > 0, self.decays_[None, :] * np.exp(-np.maximum(lags, 0)[:, None]
                                                                            * self.decays_[None, :]), 0.0)
        comp = self.component_adjacency_[:, :, np.asarray(sources, dtype=np.int64)]  # (K, D, M)
        return np.einsum("mu,uim->mi", dens, comp)

    def _kernel_support_array(self) -> np.ndarray:
        return np.full((self.n_codes_, self.n_codes_), np.inf)

    def _simulate_sequences(self, start: np.ndarray, end: np.ndarray, seed: SeedLike) -> Sequences:
        radius = float(np.max(np.abs(np.linalg.eigvals(self.adjacency_))))
        if radius >= 1:
            raise PathwaysInputError(f"adjacency_: spectral radius {radius:.3f} >= 1, simulation would explode")
        return simulate_hawkes(self.baseline_, self.component_adjacency_, start=start, end=end,
                               decays=self.decays_, kernel="sumexp", seed=seed, vocab=self.vocab_)

    def _fisher_standard_errors(self, seqs: Sequences, baselines: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Block-diagonal observed information (one (1+DK)² block per target code), inverted block by block."""
        tensors, x, _ = self._fitted_values(seqs)
        d, dim, k = tensors.design, self.n_codes_, self.decays_.size
        lam = self._event_intensities(seqs, baselines)
        p = 1 + dim * k
        base_deriv = baselines[d.seq, d.code] / np.where(self.baseline_ > 0, self.baseline_, 1.0)[d.code]
        rows = np.concatenate([np.arange(d.n_events), np.repeat(d.row, k)])
        cols = np.concatenate([d.code * p, (d.code[d.row] * p + 1)[:, None].repeat(k, 1).ravel()
                               + (d.col.astype(np.int64)[:, None] * k + np.arange(k)[None, :]).ravel()])
        vals = np.concatenate([base_deriv / lam, (x.numpy() / lam[d.row][:, None]).ravel()])
        z = scipy.sparse.csr_matrix((vals, (rows, cols)), shape=(d.n_events, dim * p))
        info = (z.T @ z).tocsr()  # block diagonal: events only touch their own target's block
        counts = np.bincount(d.code, minlength=dim)
        b_se, a_se = np.full(dim, np.nan), np.full((dim, dim), np.nan)
        for i in np.flatnonzero(counts):  # D small dense inversions
            block = info[i * p:(i + 1) * p, i * p:(i + 1) * p].toarray()
            cov = np.linalg.pinv(block, hermitian=True)
            b_se[i] = math.sqrt(max(cov[0, 0], 0.0))
            sub = cov[1:, 1:].reshape(dim, k, dim, k)
            a_se[i] = np.sqrt(np.maximum(sub.sum(axis=(1, 3)).diagonal(), 0.0))  # var of Σ_u a^u_ij
        return b_se, a_se


class HawkesExpKernel(HawkesSumExpKernel):
    """Multivariate Hawkes process with exponential kernels φ_ij(t) = a_ij β e^{-βt} (one decay β for all pairs).

    Same parameters and attributes as :class:`HawkesSumExpKernel`, with ``decay`` (float) instead of ``decays``;
    ``decay_`` holds the decay used (learned when ``learn_decay``).

    Examples
    --------
    >>> from pathways.synthetic import simulate_hawkes
    >>> seqs = simulate_hawkes(np.array([0.2, 0.1]), np.array([[0.3, 0.0], [0.5, 0.2]]), end=2000.0,
    ...                        n_sequences=10, seed=0)
    >>> model = HawkesExpKernel(decay=1.0, penalty="l1", C=1e4).fit(seqs)
    >>> bool(model.converged_), model.baseline_.shape
    (True, (2,))
    """

    def __init__(self, decay: float = 1.0, penalty: str | None = None, C: float = 1e3,
                 fit_method: str = "likelihood", learn_decay: bool = False, covariates: Sequence[str] | None = None,
                 elastic_net_ratio: float = 0.95, max_iter: int = 500, tol: float = 1e-8, accelerate: bool = True,
                 device: str = "cpu", verbose: bool = False):
        self.decay = decay
        self.penalty = penalty
        self.C = C
        self.fit_method = fit_method
        self.learn_decay = learn_decay
        self.covariates = covariates
        self.elastic_net_ratio = elastic_net_ratio
        self.max_iter = max_iter
        self.tol = tol
        self.accelerate = accelerate
        self.device = device
        self.verbose = verbose

    def _init_decays(self) -> np.ndarray:
        try:
            decay = np.asarray(self.decay, dtype=np.float64)
        except (TypeError, ValueError):
            raise PathwaysInputError(f"decay: expected one positive finite number, got {self.decay!r}") from None
        if decay.ndim != 0 or not np.isfinite(decay) or decay <= 0:
            raise PathwaysInputError(f"decay: expected one positive finite number, got {self.decay!r}")
        return decay.reshape(1)

    def _store(self, *args: Any, **kwargs: Any) -> None:
        super()._store(*args, **kwargs)
        self.decay_ = float(self.decays_[0])


def _patient_covariates(log: EventLog, names: list[str]) -> np.ndarray:
    """(P, q) float covariates from ``log.patients``: 'age' at start, 'sex' as 1 = F, others numeric columns."""
    pat = log.patients
    cols = []
    for name in names:
        if name == "age" and "age" not in pat.columns:
            years = 365.25 if log.time_unit == "days" else 1.0
            cols.append((pat["start"].to_numpy(np.float64) - pat["birth"].to_numpy(np.float64)) / years)
        elif name == "sex" and "sex" in pat.columns:
            sex = pat["sex"].astype(object)
            cols.append(np.where(sex == "F", 1.0, np.where(sex == "M", 0.0, np.nan)))
        elif name in pat.columns:
            cols.append(pd.to_numeric(pat[name], errors="coerce").to_numpy(np.float64))
        else:
            raise PathwaysInputError(f"covariates: column {name!r} not in log.patients "
                                     f"(available: {list(pat.columns)})")
    return np.column_stack(cols) if cols else np.zeros((log.n_patients, 0))
