"""SCCS past one process (gloo, 2 CPU processes). Classic SCCS over cases sharded across processes: the same
objective (1e-8), estimates, profile intervals, p-values and statuses as one process, separated windows included.
ConvSCCS cross-validation folds and bootstrap replicates split over the ranks: the same scores, selected penalties,
coefficients and intervals as one process."""
from __future__ import annotations

import os
import warnings

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from pathways.errors import PathwaysInputError
from pathways.models.sccs import SCCS, ConvSCCSCV
from pathways.models.sccs import distributed as sccs_distributed
from pathways.synthetic.sccs import simulate_sccs

# a hung rank (a collective never answered) fails the test instead of blocking the run
pytestmark = [pytest.mark.skipif(not dist.is_available(), reason="torch built without torch.distributed"),
              pytest.mark.timeout(300)]

COLUMNS = ["log_ri", "ci_low", "ci_high", "p"]


def _classic_data():
    # drug_0 [0, 2]: every exposed case's outcome inside (upper separation); drug_0's later windows hold no outcome
    # (lower); drug_1: ordinary estimates
    truth = np.stack([np.r_[np.full(3, 6.0), np.zeros(17)], np.r_[np.zeros(2), np.full(4, 0.7), np.zeros(14)]])
    return simulate_sccs(80, 40, truth, exposure_prob=[0.3, 0.6], seed=1)


def _classic(data, shard=None) -> dict:
    model = SCCS(risk_windows=[[0, 2], [3, 8], [16, 19]])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the windows without outcome are announced (on every rank)
        if shard is None:
            model.fit(data)
        else:
            sccs_distributed.fit_sharded(model, data.subset(shard))
    r = model.results_
    return {"objective": sccs_distributed.objective(model, data), "values": r[COLUMNS].to_numpy(float),
            "status": r["status"].tolist(), "separation": r["separation"].tolist()}


def _conv_data():
    truth = np.stack([np.r_[np.zeros(1), np.full(3, 0.8), np.zeros(1)], np.zeros(5)])
    return simulate_sccs(150, 16, truth, exposure_prob=0.6, seed=4)


def _split(split: bool) -> dict:
    """ConvSCCSCV: 3 folds over a 3 x 2 penalty grid, then 6 bootstrap replicates in batches of 2 (3 batches)."""
    model = ConvSCCSCV(n_lags=4, C_tv_grid=[10.0, 100.0, 1000.0], C_group_l1_grid=[100.0, 1000.0], n_folds=3,
                       n_bootstrap=6, bootstrap_batch=2, seed=3)
    if split:
        sccs_distributed.fit_split(model, _conv_data())
    else:
        model.fit(_conv_data())
    cv = model.cv_results_
    return {"scores": cv[["mean_test_score", "std_test_score", "mean_train_score"]].to_numpy(float),
            "n_iter": cv["n_iter"].tolist(), "best": model.best_params_, "coef": model.coef_,
            "boot": model.bootstrap_coef_, "ci": np.stack([model.ci_low_, model.ci_high_])}


def _worker(rank: int, world: int, init_file: str, out: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        data = _classic_data()
        cases = np.arange(data.n_cases)
        # uneven shards: rank 0 holds the first third of the cases
        mine = cases[: data.n_cases // 3] if rank == 0 else cases[data.n_cases // 3:]
        torch.save({"classic": _classic(data, mine), "split": _split(True)}, os.path.join(out, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


@pytest.fixture(scope="module")
def ranks(tmp_path_factory):
    """The results of both ranks of one 2-process run (classic SCCS sharded, ConvSCCS CV and bootstrap split)."""
    tmp_path = tmp_path_factory.mktemp("sccs_ranks")
    mp.start_processes(_worker, args=(2, str(tmp_path / "init"), str(tmp_path)), nprocs=2, join=True,
                       start_method="fork")
    return [torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in range(2)]


def test_sharded_classic_sccs_equals_one_process(ranks):
    ref = _classic(_classic_data())
    # the fixture holds what the test is about: a separated window, empty windows, ordinary estimates
    assert ref["status"][0] == "separated" and ref["separation"][0] == "upper" and np.isinf(ref["values"][0, 2])
    assert "no exposed outcome" in ref["status"] and "estimated" in ref["status"]
    for got in ranks:
        assert abs(got["classic"]["objective"] - ref["objective"]) < 1e-8
        assert got["classic"]["status"] == ref["status"] and got["classic"]["separation"] == ref["separation"]
        np.testing.assert_allclose(got["classic"]["values"], ref["values"], rtol=1e-8, atol=1e-8)


def test_split_cv_and_bootstrap_equal_one_process(ranks):
    torch.set_num_threads(1)
    ref = _split(False)
    assert len(set(ref["n_iter"])) > 1 and np.ptp(ref["scores"][:, 0]) > 0  # the grid cells differ
    for got in (r["split"] for r in ranks):
        assert got["best"] == ref["best"] and got["n_iter"] == ref["n_iter"]
        np.testing.assert_allclose(got["scores"], ref["scores"], rtol=1e-10, atol=1e-12)
        for key in ("coef", "boot", "ci"):
            np.testing.assert_allclose(got[key], ref[key], rtol=1e-8, atol=1e-10, err_msg=key)
    assert np.ptp(ref["boot"], axis=0).max() > 0  # the replicates are distinct draws


def test_sharded_classic_sccs_refuses_event_dependent_observation():
    data = _classic_data()
    with pytest.raises(PathwaysInputError, match="event_dependent_observation"):
        sccs_distributed.fit_sharded(SCCS(event_dependent_observation="exponential"), data)
