"""Common face of every Hawkes learner in pathways (parametric exp / sum-exp kernels and the nonparametric EM).

A multivariate Hawkes process on codes ``0..D-1`` has intensities

    λ_i(t) = μ_i + Σ_{t_l < t} φ_{i c_l}(t - t_l),

one realization per sequence (patient), each observed on its own window ``[start, end]``. ``adjacency_[i, j]`` is
the L1 norm of the kernel φ_ij: the expected number of code-i events directly triggered by one code-j event
(tick's convention). The history is *strictly* before t: events at the same time do not excite each other, which
matters for claims data where many events share a day.

Score convention
----------------
``score(data)`` is the exact log-likelihood per event over the observation windows, whatever the fit method:

    score = Σ_sequences [ Σ_k log λ_{c_k}(t_k) - Σ_i ∫_{start}^{end} λ_i(s) ds ] / (number of events)

Hooks for subclasses (the contract em.py builds on)
---------------------------------------------------
All hooks receive a validated :class:`~pathways.encode.Sequences` ``seqs`` whose marks index the fitted codes
(``0..D-1``) and ``baselines``, a float64 array ``(len(seqs), D)`` of the baseline of every sequence (equal rows
unless the learner has patient covariates). Arrays are numpy float64 on the way out.

``_fit_sequences(seqs, covariates) -> None``
    Learn the parameters; must set ``baseline_`` (D,), ``adjacency_`` (D, D), ``n_iter_``, ``converged_`` and
    ``history_`` (list of dicts, one per iteration or stage). ``covariates`` is ``(len(seqs), q)`` or None.
``_event_intensities(seqs, baselines) -> (N,)``
    λ_{c_k}(t_k) for every event k, in the flat order of ``seqs``, history strictly before t_k in its sequence.
``_compensators(seqs, baselines) -> (own (N,), total (len(seqs), D))``
    ``own[k]`` = ∫_{start}^{t_k} λ_{c_k}; ``total[p, i]`` = ∫_{start_p}^{end_p} λ_i.
``_kernel_columns(lags (M,), sources (M,) int) -> (M, D)``
    φ_{i, sources[m]}(lags[m]) for every target i; 0 where ``lags <= 0`` or beyond the kernel support.
``_kernel_support_array() -> (D, D)``
    Support of φ_ij (``np.inf`` for exponential kernels).
``_simulate_sequences(start (n,), end (n,), seed) -> Sequences``
    Draw realizations of the fitted process on the given windows.
``_fisher_standard_errors(seqs, baselines) -> (baseline_se (D,), adjacency_se (D, D))``
    Standard errors from the observed information at the fitted parameters.

Optional hooks with defaults: ``_kernel_norms()`` (returns ``adjacency_``), ``_sequence_covariates(data, seqs,
covariate_values)`` (returns None: no covariates) and ``_sequence_baselines(seqs, covariates)`` (tiles
``baseline_``).
"""
from __future__ import annotations

import abc
import copy
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from pathways.data.eventlog import EventLog
from pathways.data.tables import factors_frame
from pathways.encode.sequences import Sequences, to_sequences
from pathways.errors import PathwaysInputError
from pathways.models.base import NotFittedError, PathwaysEstimator, full_batch_fit
from pathways.models.hawkes.residuals import HawkesResiduals, excess_events, residuals_from
from pathways.progress import progress_bar
from pathways.utils import SeedLike, rng, segment_ids

HawkesData = EventLog | Sequences | Sequence[Sequence[np.ndarray]]


@dataclass(frozen=True)
class HawkesIntervals:
    """Confidence intervals on a fitted Hawkes model's baseline and adjacency.

    Attributes
    ----------
    baseline_low, baseline_high : (D,) bounds on ``baseline_``.
    adjacency_low, adjacency_high : (D, D) bounds on ``adjacency_`` (same orientation: [target, source]).
    method : ``"bootstrap"`` or ``"fisher"``.
    alpha : 1 - coverage.
    codes : the code order of rows and columns.
    """

    baseline_low: np.ndarray
    baseline_high: np.ndarray
    adjacency_low: np.ndarray
    adjacency_high: np.ndarray
    method: str
    alpha: float
    codes: np.ndarray

    def to_frame(self, adjacency: np.ndarray) -> pd.DataFrame:
        """Long table ``source, target, effect, ci_low, ci_high, method`` of the adjacency intervals."""
        d = self.codes.size
        target, source = np.divmod(np.arange(d * d), d)
        return pd.DataFrame({
            "source": self.codes[source], "target": self.codes[target],
            "effect": np.asarray(adjacency).ravel(), "ci_low": self.adjacency_low.ravel(),
            "ci_high": self.adjacency_high.ravel(), "method": f"hawkes-{self.method}",
        })


class HawkesBase(PathwaysEstimator, abc.ABC):
    """Shared scikit-learn face of the Hawkes learners: data conversion, scoring, diagnostics, intervals.

    Subclasses implement the hooks listed in this module's docstring. ``fit``/``score``/``goodness_of_fit`` accept
    an :class:`~pathways.data.EventLog`, :class:`~pathways.encode.Sequences` or tick's list-of-lists format
    (converted with ``Sequences.from_tick``; pass ``end_times`` to ``fit`` for tick data).
    """

    input_kind = "sequences"

    # ------------------------------------------------------------------------------------------------------------
    # hooks
    # ------------------------------------------------------------------------------------------------------------
    @abc.abstractmethod
    def _fit_sequences(self, seqs: Sequences, covariates: np.ndarray | None) -> None:
        """Learn the parameters from validated sequences (see module docstring)."""

    @abc.abstractmethod
    def _event_intensities(self, seqs: Sequences, baselines: np.ndarray) -> np.ndarray:
        """λ_{c_k}(t_k) per event (see module docstring)."""

    @abc.abstractmethod
    def _compensators(self, seqs: Sequences, baselines: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Compensator at each event for its own code, and over each whole window per code."""

    @abc.abstractmethod
    def _kernel_columns(self, lags: np.ndarray, sources: np.ndarray) -> np.ndarray:
        """φ_{i, sources[m]}(lags[m]) for all targets i, shape (M, D)."""

    @abc.abstractmethod
    def _kernel_support_array(self) -> np.ndarray:
        """(D, D) kernel supports."""

    @abc.abstractmethod
    def _simulate_sequences(self, start: np.ndarray, end: np.ndarray, seed: SeedLike) -> Sequences:
        """Realizations of the fitted process on the windows [start, end]."""

    @abc.abstractmethod
    def _fisher_standard_errors(self, seqs: Sequences, baselines: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Standard errors of baseline_ and adjacency_ from the observed information."""

    def _kernel_norms(self) -> np.ndarray:
        return np.asarray(self.adjacency_, dtype=np.float64)

    def _sequence_covariates(self, data: Any, seqs: Sequences,
                             covariate_values: np.ndarray | None) -> np.ndarray | None:
        """Per-sequence covariates (n_seq, q) used by the baseline, or None for learners without covariates."""
        if covariate_values is not None:
            raise PathwaysInputError(f"covariate_values: {type(self).__name__} has no patient covariates")
        return None

    def _sequence_baselines(self, seqs: Sequences, covariates: np.ndarray | None) -> np.ndarray:
        """(n_seq, D) baseline of every sequence; constant rows by default."""
        return np.broadcast_to(np.asarray(self.baseline_, np.float64), (len(seqs), self.n_codes_)).copy()

    # ------------------------------------------------------------------------------------------------------------
    # data conversion
    # ------------------------------------------------------------------------------------------------------------
    def _to_sequences(self, data: HawkesData, end_times: Any = None, *, fitting: bool = False) -> Sequences:
        """Convert any accepted input to Sequences whose marks index the model's codes; validate it."""
        if isinstance(data, EventLog):
            seqs = to_sequences(data)
        elif isinstance(data, Sequences):
            seqs = data
        elif isinstance(data, (list, tuple)):
            seqs = Sequences.from_tick(data, end_times=end_times)
        else:
            raise PathwaysInputError(f"data: expected EventLog, Sequences or tick's list of lists, "
                                     f"got {type(data).__name__}")
        if len(seqs) == 0:
            raise PathwaysInputError("data: no sequences")
        seqs._validate()
        if fitting:
            if seqs.n_events == 0:
                raise PathwaysInputError(f"data: all {len(seqs)} sequences are empty; a Hawkes fit needs events")
            return seqs
        return self._align_codes(seqs)

    def _align_codes(self, seqs: Sequences) -> Sequences:
        """Re-index marks onto the fitted code order; unseen codes are an error."""
        self.check_fitted()
        if seqs.vocab is not None and getattr(self, "vocab_", None) is not None:
            if seqs.vocab == self.vocab_:
                return seqs
            index = pd.Index(self.codes_)
            mapped = index.get_indexer(np.asarray(seqs.vocab.codes, dtype=object).astype(str))
            used = np.unique(seqs.marks)
            unseen = used[mapped[used] < 0]
            if unseen.size:
                raise PathwaysInputError(
                    f"data: {unseen.size} codes unseen at fit time, e.g. {seqs.vocab.codes[unseen[0]]!r}")
            return Sequences(seqs.times, mapped[seqs.marks], seqs.offsets, seqs.start, seqs.end, self.n_codes_,
                             self.vocab_, seqs.patient_index, validate=False)
        if seqs.n_codes != self.n_codes_:
            raise PathwaysInputError(f"data: {seqs.n_codes} codes, but the model was fitted on {self.n_codes_}")
        return seqs

    def check_fitted(self) -> None:
        """Raise :class:`NotFittedError` unless ``fit`` has run (the fitted state is ``adjacency_``)."""
        if not hasattr(self, "adjacency_"):
            raise NotFittedError(f"{type(self).__name__} is not fitted yet: call fit first")

    def _code_index(self, code: int | str, name: str) -> int:
        if isinstance(code, (int, np.integer)):
            if not 0 <= int(code) < self.n_codes_:
                raise PathwaysInputError(f"{name}: index {code} outside [0, {self.n_codes_})")
            return int(code)
        hits = np.flatnonzero(self.codes_ == str(code))
        if hits.size == 0:
            raise PathwaysInputError(f"{name}: code {code!r} unseen at fit time")
        return int(hits[0])

    # ------------------------------------------------------------------------------------------------------------
    # estimator face
    # ------------------------------------------------------------------------------------------------------------
    @full_batch_fit
    def fit(self, data: HawkesData, validation: Any = None, *, end_times: Any = None,
            covariate_values: np.ndarray | None = None) -> "HawkesBase":
        """Fit the process on all sequences of ``data``.

        Parameters
        ----------
        data : EventLog, Sequences, or tick's list (per realization) of lists (per code) of sorted times.
        validation : ignored: the Hawkes learners are full-batch solvers with their own stopping rules (accepted
            for the common model protocol).
        trainer : the run's :class:`~pathways.training.Trainer` (keyword, added by ``full_batch_fit``): its device
            and iteration cap apply to this fit.
        end_times : only for tick's format: observation end of each realization (default: its last event).
        covariate_values : (n_sequences, q) covariates for Sequences input of learners with covariates.

        Returns
        -------
        self
        """
        seqs = self._to_sequences(data, end_times, fitting=True)
        self.n_codes_ = int(seqs.n_codes)
        self.vocab_ = seqs.vocab
        self.codes_ = (np.asarray(seqs.vocab.codes, dtype=object).astype(str) if seqs.vocab is not None
                       else np.arange(self.n_codes_).astype(str)).astype(object)
        covariates = self._sequence_covariates(data, seqs, covariate_values)
        self._fit_sequences(seqs, covariates)
        self.n_events_fit_ = int(seqs.n_events)
        return self

    def _prepared(self, data: HawkesData, covariate_values: np.ndarray | None = None
                  ) -> tuple[Sequences, np.ndarray]:
        seqs = self._to_sequences(data)
        covariates = self._sequence_covariates(data, seqs, covariate_values)
        return seqs, self._sequence_baselines(seqs, covariates)

    def score_samples(self, data: HawkesData, covariate_values: np.ndarray | None = None) -> np.ndarray:
        """Log-likelihood of each sequence over its observation window (float64, one value per sequence).

        ``Σ_k log λ_{c_k}(t_k) - Σ_i ∫_{start}^{end} λ_i``; ``-inf`` for a sequence with an event of zero intensity.
        """
        return self._sequence_log_likelihoods(*self._prepared(data, covariate_values))

    def _sequence_log_likelihoods(self, seqs: Sequences, baselines: np.ndarray) -> np.ndarray:
        lam = self._event_intensities(seqs, baselines)
        _, total = self._compensators(seqs, baselines)
        with np.errstate(divide="ignore"):
            logs = np.log(lam)
        per_seq = np.zeros(len(seqs))
        np.add.at(per_seq, np.repeat(np.arange(len(seqs)), seqs.lengths), logs)
        return per_seq - total.sum(axis=1)

    def log_likelihood(self, data: HawkesData, covariate_values: np.ndarray | None = None) -> float:
        """Total log-likelihood of ``data``: the sum of :meth:`score_samples` (see module docstring)."""
        return float(np.sum(self.score_samples(data, covariate_values)))

    def score(self, data: HawkesData, y: Any = None, covariate_values: np.ndarray | None = None) -> float:
        """Mean log-likelihood per event: Σ_seq [Σ_k log λ(t_k) - ∫_start^end Σ_i λ_i] / n_events (higher is better).

        ``-inf`` when an event has zero intensity under the model (e.g. a code with zero baseline and no excitation).
        """
        seqs, baselines = self._prepared(data, covariate_values)
        if seqs.n_events == 0:
            raise PathwaysInputError("data: no events to score")
        return float(np.sum(self._sequence_log_likelihoods(seqs, baselines))) / seqs.n_events

    def to_factors(self, data: HawkesData | None = None) -> pd.DataFrame:
        """Factors table of the excitation: one row per (source, target) with ``effect = adjacency_[target, source]``.

        ``lag_days`` is NaN (the effect integrates the whole kernel); ``ci_low``/``ci_high`` come from
        ``confidence_intervals_`` when the fit kept intervals, else NaN. ``data`` is accepted for the common model
        protocol and not used (use :func:`pathways.factors.hawkes_factors` for data-based weights and intervals).

        Examples
        --------
        >>> from pathways.synthetic import simulate_hawkes
        >>> from pathways.models.hawkes import HawkesExpKernel
        >>> seqs = simulate_hawkes(np.array([0.2, 0.1]), np.array([[0.3, 0.0], [0.5, 0.2]]), end=500.0,
        ...                        n_sequences=5, seed=0)
        >>> HawkesExpKernel(decay=1.0).fit(seqs).to_factors().shape
        (4, 7)
        """
        self.check_fitted()
        adjacency = np.asarray(self.adjacency_, dtype=np.float64)
        d = adjacency.shape[0]
        target, source = np.divmod(np.arange(d * d), d)
        intervals = vars(self).get("confidence_intervals_")
        low = high = None
        if isinstance(intervals, HawkesIntervals):
            low, high = intervals.adjacency_low.ravel(), intervals.adjacency_high.ravel()
        codes = np.asarray(self.codes_, dtype=object)
        return factors_frame(codes[source], codes[target], adjacency.ravel(), method=type(self).__name__,
                             ci_low=low, ci_high=high)

    def get_kernel_values(self, i: int | str, j: int | str, t: np.ndarray) -> np.ndarray:
        """Values of the kernel φ_ij (effect of code j on code i) at lags ``t``; 0 for t <= 0."""
        self.check_fitted()
        i, j = self._code_index(i, "i"), self._code_index(j, "j")
        t = np.atleast_1d(np.asarray(t, dtype=np.float64))
        if np.isnan(t).any():  # a NaN lag compares false everywhere and would read as "no effect"
            raise PathwaysInputError(f"t: {int(np.isnan(t).sum())} NaN lag(s) of {t.size}, first at position "
                                     f"{int(np.flatnonzero(np.isnan(t))[0])}")
        return self._kernel_columns(t, np.full(t.size, j, dtype=np.int64))[:, i]

    def get_kernel_supports(self) -> np.ndarray:
        """(D, D) support of each kernel (``np.inf`` for exponential kernels)."""
        self.check_fitted()
        return self._kernel_support_array()

    def get_kernel_norms(self) -> np.ndarray:
        """(D, D) L1 norms of the kernels (equal to ``adjacency_``)."""
        self.check_fitted()
        return self._kernel_norms()

    def kernel_values(self, lags: np.ndarray, sources: np.ndarray) -> np.ndarray:
        """(M, D) values φ_{i, sources[m]}(lags[m]) for every target i; 0 for lags <= 0 or beyond the support."""
        self.check_fitted()
        return self._kernel_columns(np.asarray(lags, dtype=np.float64), np.asarray(sources, dtype=np.int64))

    def residuals(self, data: HawkesData, covariate_values: np.ndarray | None = None) -> HawkesResiduals:
        """Per-sequence log-likelihood, events and time-rescaled event times (:class:`HawkesResiduals`)."""
        self.check_fitted()
        seqs, baselines = self._prepared(data, covariate_values)
        own, total = self._compensators(seqs, baselines)
        return residuals_from(seqs, self._event_intensities(seqs, baselines), own, total)

    def expected_excess_events(self, data: HawkesData) -> tuple[np.ndarray, np.ndarray]:
        """(excess (D, D) [target, source] events attributed to the source's events in ``data``, events per code).

        ``excess[i, j] = Σ_{code-j events l} Φ_ij(end - t_l)``: each kernel integrated over what remains of its
        sequence's window.
        """
        self.check_fitted()
        return excess_events(self._prepared(data)[0], self.n_codes_, self._compensators)

    def intensity(self, sequence: HawkesData, t: np.ndarray, *, covariate_values: np.ndarray | None = None,
                  chunk: int = 1 << 20) -> np.ndarray:
        """Conditional intensities λ_i(t) of all codes at absolute times ``t`` given one sequence's history.

        Parameters
        ----------
        sequence : one sequence (Sequences of length 1, EventLog of one patient, or a one-realization tick list).
        t : query times (same unit as the data); history is strictly before each query time.
        covariate_values : (1, q) covariates of the sequence, for learners with covariates and Sequences input.
        chunk : bound on the (query, history event, code) triples held in memory at once.

        Returns
        -------
        (len(t), D) float64 array.
        """
        seqs, baselines = self._prepared(sequence, covariate_values)
        if len(seqs) != 1:
            raise PathwaysInputError(f"sequence: expected exactly one sequence, got {len(seqs)}")
        t = np.atleast_1d(np.asarray(t, dtype=np.float64))
        if not np.all(np.isfinite(t)):
            raise PathwaysInputError(f"t: {int((~np.isfinite(t)).sum())} non-finite query times")
        out = np.tile(baselines[0], (t.size, 1))
        hist_t, hist_c = seqs.times, seqs.marks
        if hist_t.size == 0:
            return out
        # all (query, history event) pairs, chunked over queries so memory stays bounded
        step = max(1, chunk // (hist_t.size * self.n_codes_))
        for lo in range(0, t.size, step):
            q = t[lo:lo + step]
            lags = (q[:, None] - hist_t[None, :]).ravel()
            cols = self._kernel_columns(lags, np.tile(hist_c, q.size))
            out[lo:lo + step] += cols.reshape(q.size, hist_t.size, -1).sum(axis=1)
        return out

    def simulate(self, end_time: float, n: int = 1, seed: SeedLike = None) -> Sequences:
        """Draw ``n`` realizations of the fitted process on [0, end_time], coded like the training data."""
        self.check_fitted()
        if not (np.isfinite(end_time) and end_time > 0):
            raise PathwaysInputError(f"end_time: must be finite and > 0, got {end_time!r}")
        if int(n) < 1:
            raise PathwaysInputError(f"n: must be >= 1, got {n!r}")
        return self._simulate_sequences(np.zeros(int(n)), np.full(int(n), float(end_time)), seed)

    # ------------------------------------------------------------------------------------------------------------
    # diagnostics
    # ------------------------------------------------------------------------------------------------------------
    def goodness_of_fit(self, data: HawkesData, covariate_values: np.ndarray | None = None) -> pd.DataFrame:
        """Time-rescaling test: per code, compensator increments between its successive events vs Exp(1).

        Under the fitted model, each sequence's code-i events rescaled by the compensator Λ_i form a unit-rate
        Poisson process on [0, Λ_i(end)]. The windows of all sequences are chained end to end (each offset by the
        total compensators of the sequences before it), so that the gaps — including those spanning a window
        boundary — are i.i.d. Exp(1) exactly, however short the windows; dropping or truncating the last, cut-off
        gap of each window would bias the test on many short windows. A Kolmogorov-Smirnov test is run per code
        with at least one event.

        Returns
        -------
        DataFrame with columns ``code``, ``n_events``, ``ks_statistic``, ``p_value`` (one row per code).
        """
        seqs, baselines = self._prepared(data, covariate_values)
        own, total = self._compensators(seqs, baselines)
        residuals, codes = _chained_gaps(seqs, own, total)
        counts = np.bincount(codes, minlength=self.n_codes_)
        stat = np.full(self.n_codes_, np.nan)
        pval = np.full(self.n_codes_, np.nan)
        order = np.argsort(codes, kind="stable")
        groups = np.split(residuals[order], np.cumsum(counts)[:-1])
        for i in np.flatnonzero(counts):  # one KS test per code (D tests, not per event)
            res = stats.kstest(groups[i], "expon")
            stat[i], pval[i] = res.statistic, res.pvalue
        return pd.DataFrame({"code": self.codes_, "n_events": counts, "ks_statistic": stat, "p_value": pval})

    def confidence_intervals(self, data: HawkesData, method: str = "bootstrap", alpha: float = 0.05,
                             n_boot: int = 100, seed: SeedLike = None,
                             covariate_values: np.ndarray | None = None) -> HawkesIntervals:
        """Confidence intervals on ``baseline_`` and ``adjacency_``.

        Parameters
        ----------
        data : the data the model was fitted on.
        method : ``"bootstrap"`` (resample sequences with replacement and refit; percentile intervals; needs at
            least 2 sequences) or ``"fisher"`` (Wald intervals from the observed information at the fitted values,
            clipped at 0; ignores the penalty and is optimistic for parameters on the zero boundary).
        alpha : 1 - coverage.
        n_boot : bootstrap replicates.
        seed : randomness of the bootstrap.
        """
        self.check_fitted()
        if not 0 < alpha < 1:
            raise PathwaysInputError(f"alpha: must be in (0, 1), got {alpha!r}")
        if method == "fisher":
            seqs, baselines = self._prepared(data, covariate_values)
            b_se, a_se = self._fisher_standard_errors(seqs, baselines)
            z = stats.norm.ppf(1 - alpha / 2)
            mu, adj = np.asarray(self.baseline_), np.asarray(self.adjacency_)
            result = HawkesIntervals(np.maximum(mu - z * b_se, 0), mu + z * b_se, np.maximum(adj - z * a_se, 0),
                                     adj + z * a_se, "fisher", float(alpha), self.codes_)
        elif method == "bootstrap":
            result = self._bootstrap_intervals(data, alpha, int(n_boot), seed, covariate_values)
        else:
            raise PathwaysInputError(f"method: expected 'bootstrap' or 'fisher', got {method!r}")
        return result

    def _bootstrap_intervals(self, data: HawkesData, alpha: float, n_boot: int, seed: SeedLike,
                             covariate_values: np.ndarray | None) -> HawkesIntervals:
        seqs = self._to_sequences(data)
        covariates = self._sequence_covariates(data, seqs, covariate_values)
        if len(seqs) < 2:
            raise PathwaysInputError("data: the bootstrap resamples sequences and needs at least 2; "
                                     "use method='fisher' for a single realization")
        if n_boot < 2:
            raise PathwaysInputError(f"n_boot: must be >= 2, got {n_boot}")
        gen = rng(seed)
        mus, adjs = [], []
        for _ in progress_bar(range(n_boot), desc="Hawkes bootstrap", unit="fit"):  # one refit per replicate
            idx = gen.integers(0, len(seqs), len(seqs))
            est = copy.deepcopy(self)
            est._fit_sequences(seqs[idx], None if covariates is None else covariates[idx])
            mus.append(np.asarray(est.baseline_))
            adjs.append(np.asarray(est.adjacency_))
        q = [alpha / 2, 1 - alpha / 2]
        mu_lo, mu_hi = np.quantile(np.stack(mus), q, axis=0)
        a_lo, a_hi = np.quantile(np.stack(adjs), q, axis=0)
        return HawkesIntervals(mu_lo, mu_hi, a_lo, a_hi, "bootstrap", float(alpha), self.codes_)


def _chained_gaps(seqs: Sequences, own: np.ndarray, total: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exp(1) gaps per code of the rescaled windows chained end to end (see ``goodness_of_fit``)."""
    seq_id = segment_ids(seqs.offsets)
    # offset of sequence p for code i: total compensator of code i over the sequences before p
    offsets = np.cumsum(total, axis=0) - total
    chained = own + offsets[seq_id, seqs.marks]
    order = np.lexsort((chained, seqs.marks))  # by code, then rescaled time
    c, tau = seqs.marks[order], chained[order]
    first = np.ones(order.size, dtype=bool)
    first[1:] = c[1:] != c[:-1]
    gaps = np.where(first, tau, tau - np.concatenate([[0.0], tau[:-1]]))
    return np.maximum(gaps, 0.0), c
