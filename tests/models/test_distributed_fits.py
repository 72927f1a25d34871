"""Sharded Hawkes and ConvSCCS fits (gloo, 2 CPU processes): the same objective (1e-8) and parameters as one
process."""
from __future__ import annotations

import os

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from pathways.errors import PathwaysInputError
from pathways.models.hawkes import HawkesEM, HawkesExpKernel, HawkesSumExpKernel
from pathways.models.hawkes.distributed import fit_least_squares_streaming, fit_sharded
from pathways.models.sccs import ConvSCCS
from pathways.models.sccs import distributed as sccs_distributed
from pathways.synthetic import simulate_hawkes
from pathways.synthetic.sccs import simulate_sccs

# a hung rank (a collective never answered) fails the test instead of blocking the run
pytestmark = [pytest.mark.skipif(not dist.is_available(), reason="torch built without torch.distributed"),
              pytest.mark.timeout(300)]


@pytest.fixture(autouse=True)
def _one_thread():
    """One-process references on one torch thread, like each rank (tiny ops are slower with threads on a loaded
    machine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)

MU = np.array([0.3, 0.2, 0.1])
ADJ = np.array([[0.2, 0.0, 0.1], [0.3, 0.1, 0.0], [0.0, 0.2, 0.2]])


def _data() -> dict:
    # patients: many short windows (sparse design); realizations: few long ones (dense per-code blocks)
    return {"patients": simulate_hawkes(MU, ADJ, end=40.0, n_sequences=60, seed=2),
            "long": simulate_hawkes(MU, ADJ, end=400.0, n_sequences=4, seed=3)}


def _models(device: str = "cpu") -> dict:
    return {
        "exp_likelihood": HawkesExpKernel(decay=1.0, device=device),
        "exp_l1": HawkesExpKernel(decay=1.0, penalty="l1", C=50.0, device=device),
        "exp_least_squares": HawkesExpKernel(decay=1.0, fit_method="least-squares", penalty="l2", C=100.0,
                                             device=device),
        "sumexp": HawkesSumExpKernel(decays=(0.5, 3.0), max_iter=100, device=device),
        "em": HawkesEM(kernel_support=4.0, n_bins=4, max_iter=60, device=device),
    }


def _summary(model) -> dict:
    if isinstance(model, HawkesEM):
        objective = -model.log_likelihood_ / model.n_events_fit_  # per event, the scale of the others
        return {"objective": objective, "params": np.r_[model.baseline_, model.kernel_.ravel()]}
    return {"objective": model.objective_, "params": np.r_[model.baseline_, model.component_adjacency_.ravel(),
                                                          model.decays_]}


def _sccs_data():
    truth = np.stack([np.r_[np.zeros(1), np.full(3, 0.8), np.zeros(1)], np.zeros(5)])
    return simulate_sccs(240, 20, truth, exposure_prob=0.6, seed=4)


def _fit_all(shard_of, device: str = "cpu") -> dict:
    data = _sccs_data()
    sccs = sccs_distributed.fit_sharded(ConvSCCS(n_lags=4, C_tv=50.0, C_group_l1=200.0, tol=1e-8, device=device),
                                        data.subset(shard_of(np.arange(data.n_cases))))
    out = {("sccs", "convsccs"): {"objective": sccs_distributed.objective(sccs, data), "params": sccs.coef_}}
    for data_name, seqs in _data().items():
        for name, model in _models(device).items():
            out[data_name, name] = _summary(fit_sharded(model, shard_of(seqs)))
    return out


def _worker(rank: int, world: int, init_file: str, out: str, device: str = "cpu") -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        # uneven shards: rank 0 gets the first third of the sequences
        results = _fit_all(lambda s: s[: len(s) // 3] if rank == 0 else s[len(s) // 3:], device)
        torch.save({f"{k[0]}/{k[1]}": v for k, v in results.items()}, os.path.join(out, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


def test_sharded_fits_equal_one_process(tmp_path, device: str = "cpu"):
    # fork: the children start with pathways imported; CUDA cannot be used in forked children: spawn there
    mp.start_processes(_worker, args=(2, str(tmp_path / "init"), str(tmp_path), device), nprocs=2, join=True,
                       start_method="fork" if device == "cpu" else "spawn")
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in range(2)]
    single = _fit_all(lambda s: s)
    for (data_name, name), ref in single.items():
        key = f"{data_name}/{name}"
        for got in ranks:
            assert abs(got[key]["objective"] - ref["objective"]) < 1e-8, key
            np.testing.assert_allclose(got[key]["params"], ref["params"], rtol=1e-5, atol=1e-7, err_msg=key)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_sharded_fits_on_cuda_equal_one_cpu_process(tmp_path):
    test_sharded_fits_equal_one_process(tmp_path, device="cuda")  # two ranks share the device; gloo sums on CPU


def test_streaming_least_squares_equals_one_fit_and_rejects_mixed_vocabularies():
    seqs = _data()["patients"]
    one = HawkesExpKernel(decay=1.0, fit_method="least-squares").fit(seqs)
    shards = [lambda: seqs[:10], seqs[10:35], seqs[35:]]
    streamed = fit_least_squares_streaming(HawkesExpKernel(decay=1.0, fit_method="least-squares"), shards)
    assert abs(streamed.objective_ - one.objective_) < 1e-10
    np.testing.assert_allclose(streamed.adjacency_, one.adjacency_, rtol=1e-8, atol=1e-12)
    assert streamed.n_events_fit_ == seqs.n_events
    other = simulate_hawkes(np.ones(2) * 0.1, np.zeros((2, 2)), end=10.0, n_sequences=3, seed=0)
    with pytest.raises(PathwaysInputError, match="codes"):
        fit_least_squares_streaming(HawkesExpKernel(fit_method="least-squares"), [seqs, other])
    with pytest.raises(PathwaysInputError, match="nuclear"):
        fit_sharded(HawkesExpKernel(penalty="nuclear"), seqs)
