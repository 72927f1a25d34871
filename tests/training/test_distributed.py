"""Data-parallel training (DDP, gloo, 2 CPU processes): same parameters as one process on the same global batches,
kill -9 of one rank then resume (on 2 or on 1 process) equal to an uninterrupted run."""
from __future__ import annotations

import os
import shutil
import signal
import socket
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from pathways.encode import OutcomeData
from pathways.errors import PathwaysInputError
from pathways.synthetic import simulate_hawkes
from pathways.training import Trainer
from tests.training.float64_models import GRU64 as _GRU64, RMTPP64 as _RMTPP64
from pathways.training.distributed import (
    DistContext,
    init_distributed,
    launched,
    rank_device,
    shard_batch,
)
from pathways.training.state import load_state

# a hung rank (a collective never answered) fails the test instead of blocking the run
pytestmark = [pytest.mark.skipif(not dist.is_available(), reason="torch built without torch.distributed"),
              pytest.mark.timeout(300)]

if dist.is_available():
    # DDP's constructor imports torch._dynamo (seconds): once here, inherited by every forked rank
    import torch._dynamo

WORLD = 2


@pytest.fixture(autouse=True)
def _one_thread():
    """The references run on one torch thread, like each rank: tiny ops on a loaded machine are much slower with
    several threads."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
TPP = {"hidden_size": 8, "batch_size": 7, "lr": 1e-2, "patience": None, "device": "cpu", "seed": 3}
GRU = {"embedding_dim": 8, "hidden_size": 8, "dropout": 0.0, "batch_size": 16, "lr": 1e-2, "patience": None, "device": "cpu", "seed": 3}


def _sequences():
    # 22 sequences, batch 7: an odd split (3 / 4 rows), and a last global batch of one row, so that rank 0 runs
    # with an empty share (weight 0)
    return simulate_hawkes(np.array([0.3, 0.2, 0.1]), np.array([[0.2, 0.0, 0.1], [0.3, 0.1, 0.0], [0.0, 0.2, 0.2]]),
                           end=12.0, n_sequences=22, seed=1)


def _outcomes() -> OutcomeData:
    g = np.random.default_rng(0)
    lengths = g.integers(2, 6, 31)
    offsets = np.r_[0, np.cumsum(lengths)]
    counts = g.poisson(0.4, size=(offsets[-1], 5)).astype(np.float64)
    y = np.r_[np.zeros(15), np.ones(16)][g.permutation(31)]
    return OutcomeData(sp.csr_matrix(counts), offsets, y, bin_width=30.0)


def _trainer(**kw) -> Trainer:
    return Trainer(device="cpu", progress=False, loggers=(), **kw)


def _fit_tpp(epochs: int, trainer: Trainer) -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    model = _RMTPP64(max_epochs=epochs, **TPP).fit(_sequences(), trainer=trainer)
    return {k: v.detach().clone() for k, v in model.module_.state_dict().items()}


def _fit_gru(epochs: int, trainer: Trainer) -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    model = _GRU64(max_epochs=epochs, **GRU).fit(_outcomes(), trainer=trainer)
    return {k: v.detach().clone() for k, v in model.module_.state_dict().items()}


def _max_diff(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k].double() - b[k].double()).abs().max()) for k in a)


class _KillRank1(Trainer):
    """Trainer whose rank 1 dies by SIGKILL at the start of epoch ``kill_at`` (a crashed node)."""

    kill_at = 2

    def _run_epoch(self, module, batches, device, optimizer, epoch, *args, **kwargs):
        if epoch == self.kill_at and self._dist.rank == 1:
            os.kill(os.getpid(), signal.SIGKILL)
        return super()._run_epoch(module, batches, device, optimizer, epoch, *args, **kwargs)


def _worker(rank: int, world: int, init_file: str, out: str, task: str, state_dir: str) -> None:
    torch.set_num_threads(1)
    if task == "equal":  # what torchrun sets: the Trainer joins the process group itself (env://)
        os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world), MASTER_ADDR="127.0.0.1",
                          MASTER_PORT=init_file)
    else:
        dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        if task == "equal":
            results = {"tpp": _fit_tpp(3, _trainer(strategy="ddp")), "gru": _fit_gru(3, _trainer(strategy="ddp"))}
        elif task == "kill":
            _fit_tpp(4, _KillRank1(device="cpu", progress=False, loggers=(), checkpoint_dir=state_dir))
            results = {}
        else:  # resume
            results = {"tpp": _fit_tpp(4, _trainer(checkpoint_dir=state_dir, resume=True))}
        torch.save(results, os.path.join(out, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


def _free_port() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return str(sock.getsockname()[1])


def _spawn(tmp_path, task: str, state_dir: str = "") -> list[dict]:
    init = _free_port() if task == "equal" else tmp_path / f"init_{task}"
    # fork: the children start with pathways already imported (spawn would re-import it: seconds per process)
    mp.start_processes(_worker, args=(WORLD, str(init), str(tmp_path), task, state_dir), nprocs=WORLD, join=True,
                       start_method="fork")
    return [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(WORLD)]


def test_ddp_two_processes_equal_one_process(tmp_path):
    ranks = _spawn(tmp_path, "equal")
    single = {"tpp": _fit_tpp(3, _trainer(strategy="single")), "gru": _fit_gru(3, _trainer(strategy="single"))}
    for name in ("tpp", "gru"):
        assert _max_diff(ranks[0][name], ranks[1][name]) == 0.0  # ranks hold one model
        assert _max_diff(ranks[0][name], single[name]) < 1e-9, name
    # the step is not a no-op: the weights moved away from their initialisation
    torch.manual_seed(0)
    init = _RMTPP64(max_epochs=1, **TPP)
    init._learn_data_meta(_sequences())
    torch.manual_seed(0)
    assert _max_diff(init._build_module().state_dict(), single["tpp"]) > 1e-3


def test_kill_one_rank_then_resume_equals_uninterrupted(tmp_path):
    state = tmp_path / "state"
    with pytest.raises(mp.ProcessExitedException):
        _spawn(tmp_path, "kill", str(state))
    saved = load_state(state)
    assert saved is not None and 1 <= saved["run"]["next_epoch"] <= 2  # rank 0 checkpointed before the crash
    shutil.copytree(state, tmp_path / "state_copy")
    resumed = _spawn(tmp_path, "resume", str(state))[0]["tpp"]
    uninterrupted = _fit_tpp(4, _trainer(strategy="single"))
    assert _max_diff(resumed, uninterrupted) < 1e-9
    # the same checkpoint resumed on one process (another world size) reaches the same weights
    one = _fit_tpp(4, _trainer(strategy="single", checkpoint_dir=str(tmp_path / "state_copy"), resume=True))
    assert _max_diff(one, uninterrupted) < 1e-9


def test_rank_device_maps_cuda_to_the_local_rank_under_a_launch(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("LOCAL_RANK", "3")
    assert rank_device("cuda") == "cuda:3" and rank_device("gpu") == "cuda:3" and rank_device("cpu") == "cpu"
    monkeypatch.setenv("WORLD_SIZE", "1")
    assert rank_device("cuda") == "cuda"
    # SLURM tasks count only for strategy "ddp" (a batch script's one process also sees SLURM_NTASKS)
    env = {"SLURM_NTASKS": "4", "SLURM_PROCID": "2", "SLURM_LOCALID": "0", "SLURM_JOB_NODELIST": "n[1-2]"}
    monkeypatch.setattr(os, "environ", env)
    assert not launched() and "WORLD_SIZE" not in env
    assert launched(slurm=True) and (env["RANK"], env["WORLD_SIZE"], env["MASTER_ADDR"]) == ("2", "4", "n1")
    assert rank_device("cuda", slurm=True) == "cuda:0"


def test_single_process_context_is_identity_and_ddp_needs_a_launch(monkeypatch):
    batch = {"x": torch.ones(3, 2)}
    assert DistContext().shard(batch) == (batch, 1.0)
    assert init_distributed("auto") == DistContext()
    with pytest.raises(PathwaysInputError, match="torchrun"):
        init_distributed("ddp")
    monkeypatch.setenv("WORLD_SIZE", "1")  # torchrun --nproc-per-node=1: a launch, one process
    assert init_distributed("ddp") == DistContext()
    with pytest.raises(PathwaysInputError, match="strategy"):
        init_distributed("horovod")
    with pytest.raises(PathwaysInputError, match="batch dimension"):
        shard_batch({"n": 3}, 0, 2)


def test_ddp_trainer_and_launcher_configs_compose():
    from pathlib import Path

    from hydra import compose, initialize_config_dir
    from hydra.utils import instantiate

    import pathways

    overrides = ["trainer=ddp"]
    try:
        import hydra_plugins.hydra_joblib_launcher  # noqa: F401  (optional 'launchers' extra)
        overrides.append("hydra/launcher=joblib")
    except ImportError:
        pass
    with initialize_config_dir(str(Path(pathways.__file__).parent / "configs"), version_base="1.3"), \
            warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="(?s).*validated against ConfigStore schema")  # plugin's own schema
        cfg = compose("config", overrides=overrides, return_hydra_config=True)
        gpu = compose("config", overrides=["trainer=ddp_gpu", "hydra/launcher=submitit"], return_hydra_config=True)
    trainer = instantiate(cfg.trainer)
    assert isinstance(trainer, Trainer) and trainer.strategy == "ddp" and trainer.device == "auto"
    if len(overrides) == 2:
        assert cfg.hydra.launcher._target_.endswith("JoblibLauncher") and cfg.hydra.launcher.n_jobs == 2
    assert gpu.trainer.strategy == "ddp" and gpu.trainer.precision == "16-mixed"
    assert gpu.hydra.launcher._target_.endswith("SlurmLauncher")
