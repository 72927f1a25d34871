"""Vectorised simulation of multivariate Hawkes processes by their branching (cluster) representation.

Every event is either an immigrant (from the baseline) or a child of an earlier event. Generation by generation and
across all patients at once: each parent of code j has Poisson(Σ_i a_ij) children, each child's code i is drawn
with probability a_ij / Σ_i a_ij and its delay from the normalised kernel φ_ij / a_ij. Children falling after the
patient's observation end are discarded with all their descendants (which would be later still). No Python loop per
event or per patient: the loop runs over generations only (a handful when the spectral radius is below one).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pathways.data.order import event_order
from pathways.data.vocabulary import Vocabulary
from pathways.encode.sequences import Sequences
from pathways.errors import PathwaysInputError
from pathways.utils import SeedLike, rng


@dataclass
class KernelComponent:
    """One additive kernel component φ_ij(t) = adjacency[i, j] * density_ij(t).

    ``kind="exp"``: density β e^{-βt} with β = ``decay`` (scalar or (D, D)).
    ``kind="uniform"``: density uniform on [``low``, ``high``) (scalars), i.e. one step of a step kernel.
    """

    adjacency: np.ndarray
    kind: str = "exp"
    decay: float | np.ndarray = 1.0
    low: float = 0.0
    high: float = 1.0

    def sample_delays(self, target: np.ndarray, source: np.ndarray, gen: np.random.Generator) -> np.ndarray:
        if self.kind == "exp":
            decay = np.broadcast_to(np.asarray(self.decay, dtype=np.float64), self.adjacency.shape)
            return gen.exponential(1.0, size=target.size) / decay[target, source]
        if self.kind == "uniform":
            return gen.uniform(self.low, self.high, size=target.size)
        raise PathwaysInputError(f"kernel component kind: expected 'exp' or 'uniform', got {self.kind!r}")


def kernel_components(adjacency: np.ndarray, kernel: str = "exp", decays: float | np.ndarray = 1.0,
                      bin_edges: np.ndarray | None = None) -> list[KernelComponent]:
    """Components for the usual kernels.

    - ``"exp"``: adjacency (D, D), decays scalar or (D, D).
    - ``"sumexp"``: adjacency (K, D, D) (one matrix per decay), decays (K,).
    - ``"step"``: adjacency (B, D, D) (integral of the kernel over each bin), bin_edges (B + 1,).
    """
    adjacency = np.asarray(adjacency, dtype=np.float64)
    if kernel == "exp":
        return [KernelComponent(adjacency, "exp", decays)]
    if kernel == "sumexp":
        decays = np.asarray(decays, dtype=np.float64).ravel()
        if adjacency.ndim != 3 or adjacency.shape[0] != decays.size:
            raise PathwaysInputError(f"adjacency: sumexp needs shape (K={decays.size}, D, D), got {adjacency.shape}")
        return [KernelComponent(adjacency[k], "exp", decays[k]) for k in range(decays.size)]
    if kernel == "step":
        if bin_edges is None:
            raise PathwaysInputError("bin_edges: required for kernel='step'")
        edges = np.asarray(bin_edges, dtype=np.float64)
        if adjacency.ndim != 3 or adjacency.shape[0] != edges.size - 1 or np.any(np.diff(edges) <= 0):
            raise PathwaysInputError(f"step kernel: adjacency (B, D, D) with B = len(bin_edges) - 1 and increasing "
                                     f"edges; got {adjacency.shape} and {edges.size} edges")
        return [KernelComponent(adjacency[b], "uniform", low=edges[b], high=edges[b + 1]) for b in range(edges.size - 1)]
    raise PathwaysInputError(f"kernel: expected 'exp', 'sumexp' or 'step', got {kernel!r}")


def simulate_hawkes(
    baseline: np.ndarray,
    adjacency: np.ndarray | None = None,
    *,
    start: np.ndarray | float = 0.0,
    end: np.ndarray | float = 100.0,
    n_sequences: int | None = None,
    decays: float | np.ndarray = 1.0,
    kernel: str = "exp",
    bin_edges: np.ndarray | None = None,
    components: list[KernelComponent] | None = None,
    seed: SeedLike = None,
    vocab: Vocabulary | None = None,
    max_events: int = 100_000_000,
) -> Sequences:
    """Simulate independent Hawkes realizations, one per sequence, each on its own window [start, end].

    Parameters
    ----------
    baseline : (D,) or (P, D) baseline intensities (per sequence when 2-D).
    adjacency : kernel integrals, see :func:`kernel_components` (``adjacency[i, j]`` = effect of j on i).
    start, end : observation windows (scalars or (P,)).
    n_sequences : number of sequences when neither baseline nor start/end say it.
    decays, kernel, bin_edges : kernel shape, see :func:`kernel_components`.
    components : explicit kernel components (added to those from ``adjacency``), e.g. exp + step kernels.
    seed : int or Generator.
    max_events : guard against explosive parameters.

    Returns
    -------
    Sequences with absolute times in [start, end].

    Examples
    --------
    >>> seq = simulate_hawkes(np.array([0.5, 0.2]), np.array([[0.2, 0.0], [0.4, 0.1]]), end=50.0,
    ...                       n_sequences=3, seed=1)
    >>> len(seq), seq.n_codes
    (3, 2)
    """
    gen = rng(seed)
    baseline = np.asarray(baseline, dtype=np.float64)
    n_codes = baseline.shape[-1]
    comps = list(components or [])
    if adjacency is not None:
        comps = kernel_components(adjacency, kernel, decays, bin_edges) + comps
    _check_components(comps, n_codes)
    start_arr, end_arr = _windows(baseline, start, end, n_sequences)
    n_seq = start_arr.size
    mu = np.broadcast_to(baseline, (n_seq, n_codes))
    if np.any(mu < 0) or not np.all(np.isfinite(mu)):
        raise PathwaysInputError("baseline: must be finite and non-negative")

    # immigrants
    counts = gen.poisson(mu * (end_arr - start_arr)[:, None])
    seq = np.repeat(np.repeat(np.arange(n_seq), n_codes), counts.ravel())
    code = np.repeat(np.tile(np.arange(n_codes), n_seq), counts.ravel())
    time = start_arr[seq] + gen.uniform(size=seq.size) * (end_arr - start_arr)[seq]
    all_seq, all_code, all_time = [seq], [code], [time]
    total = seq.size
    while seq.size:
        seq, code, time = _next_generation(seq, code, time, comps, end_arr, gen)
        total += seq.size
        if total > max_events:
            raise PathwaysInputError(f"simulation exceeded max_events={max_events}: is the process explosive "
                                     f"(spectral radius of the total adjacency >= 1)?")
        all_seq.append(seq), all_code.append(code), all_time.append(time)
    seq, code, time = (np.concatenate(a) for a in (all_seq, all_code, all_time))
    order = event_order(seq, time, code)
    if order is not None:
        seq, code, time = seq[order], code[order], time[order]
    offsets = np.zeros(n_seq + 1, dtype=np.int64)
    np.cumsum(np.bincount(seq, minlength=n_seq), out=offsets[1:])
    return Sequences(time, code, offsets, start_arr, end_arr, n_codes, vocab, validate=False)


def _next_generation(seq: np.ndarray, code: np.ndarray, time: np.ndarray, comps: list[KernelComponent],
                     end: np.ndarray, gen: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    out_seq, out_code, out_time = [], [], []
    for comp in comps:
        col_sum = comp.adjacency.sum(axis=0)  # expected number of children of a parent of code j
        n_children = gen.poisson(col_sum[code])
        parent = np.repeat(np.arange(code.size), n_children)
        source = code[parent]
        target = _draw_targets(comp.adjacency, source, gen)
        child_time = time[parent] + comp.sample_delays(target, source, gen)
        keep = child_time <= end[seq[parent]]
        out_seq.append(seq[parent][keep]), out_code.append(target[keep]), out_time.append(child_time[keep])
    return np.concatenate(out_seq), np.concatenate(out_code), np.concatenate(out_time)


def _draw_targets(adjacency: np.ndarray, source: np.ndarray, gen: np.random.Generator) -> np.ndarray:
    """Draw child codes i with probability a_ij / Σ_i a_ij, for all parents at once (one searchsorted)."""
    n_codes = adjacency.shape[0]
    col_sum = adjacency.sum(axis=0)
    cdf = np.cumsum(adjacency, axis=0) / np.where(col_sum > 0, col_sum, 1.0)
    cdf[-1] = 1.0
    # Column j's cdf shifted by j makes one increasing array: a single searchsorted serves every column.
    flat = (cdf + np.arange(adjacency.shape[1])[None, :]).T.ravel()
    u = gen.uniform(size=source.size) + source
    pos = np.searchsorted(flat, u, side="right")
    return np.minimum(pos - source * n_codes, n_codes - 1)


def _check_components(comps: list[KernelComponent], n_codes: int) -> None:
    if not comps:
        return
    total = np.zeros((n_codes, n_codes))
    for comp in comps:
        comp.adjacency = np.asarray(comp.adjacency, dtype=np.float64)
        if comp.adjacency.shape != (n_codes, n_codes):
            raise PathwaysInputError(f"adjacency: expected shape ({n_codes}, {n_codes}), got {comp.adjacency.shape}")
        if np.any(comp.adjacency < 0) or not np.all(np.isfinite(comp.adjacency)):
            raise PathwaysInputError("adjacency: must be finite and non-negative")
        total += comp.adjacency
    radius = float(np.max(np.abs(np.linalg.eigvals(total))))
    if radius >= 1.0:
        raise PathwaysInputError(f"adjacency: spectral radius {radius:.3f} >= 1, the process would explode")


def _windows(baseline: np.ndarray, start: np.ndarray | float, end: np.ndarray | float,
             n_sequences: int | None) -> tuple[np.ndarray, np.ndarray]:
    sizes = [np.size(start), np.size(end), baseline.shape[0] if baseline.ndim == 2 else 1, n_sequences or 1]
    n_seq = max(sizes)
    start_arr = np.broadcast_to(np.asarray(start, dtype=np.float64), (n_seq,)).copy()
    end_arr = np.broadcast_to(np.asarray(end, dtype=np.float64), (n_seq,)).copy()
    if np.any(end_arr < start_arr) or not (np.all(np.isfinite(start_arr)) and np.all(np.isfinite(end_arr))):
        raise PathwaysInputError("start/end: windows must be finite with end >= start")
    return start_arr, end_arr
