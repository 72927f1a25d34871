"""Trainer: resume equals uninterrupted, NaN stop keeps the last good state, loggers, devices, run-level settings and caps."""
from __future__ import annotations

import csv
import logging

import pytest
import torch

from pathways.errors import PathwaysInputError
from pathways.device import resolve_device
from pathways.training import Trainer, TrainingDivergedError
from pathways.training.state import STATE_FILE, load_state


class _Net(torch.nn.Module):
    """Small regression net with dropout, so resume must also restore the RNG stream."""

    def __init__(self, nan_at_epoch: int | None = None) -> None:
        super().__init__()
        self.body = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.Dropout(0.3), torch.nn.Linear(8, 1))
        self.nan_at_epoch = nan_at_epoch
        self.epoch = 0

    def forward(self, batch):
        x, y = batch
        loss = ((self.body(x) - y) ** 2).sum()
        if self.nan_at_epoch is not None and self.training and self.epoch >= self.nan_at_epoch:
            loss = loss * float("nan")
        return {"loss": loss, "n": x.shape[0]}


_X = torch.randn(64, 3, generator=torch.Generator().manual_seed(0))
_Y = _X.sum(1, keepdim=True)


def _batches(epoch: int):
    perm = torch.randperm(64, generator=torch.Generator().manual_seed(epoch))
    return [(_X[perm[i:i + 16]], _Y[perm[i:i + 16]]) for i in range(0, 64, 16)]


def _trainer(tmp, **kw) -> Trainer:
    args = dict(max_epochs=6, lr=0.01, patience=None, lr_schedule="cosine", progress=False, seed=3,
                checkpoint_dir=str(tmp), log_dir=str(tmp), device="cpu")
    args.update(kw)
    return Trainer(**args)


def _net() -> _Net:
    torch.manual_seed(1)
    return _Net()


class _Interrupt(Exception):
    pass


def test_resume_equals_uninterrupted_run(tmp_path):
    full = _net()
    history_full = _trainer(tmp_path / "full").fit(full, _batches, _batches)

    def crash_at_3(epoch):
        if epoch == 3:
            raise _Interrupt
        return _batches(epoch)

    interrupted = _net()
    with pytest.raises(_Interrupt):
        _trainer(tmp_path / "resumed").fit(interrupted, crash_at_3, _batches)
    assert load_state(tmp_path / "resumed")["run"]["next_epoch"] == 3
    resumed = _net()
    history = _trainer(tmp_path / "resumed", resume=True).fit(resumed, _batches, _batches)
    assert [r["train_loss"] for r in history] == [r["train_loss"] for r in history_full]
    assert [r["lr"] for r in history] == [r["lr"] for r in history_full]
    for a, b in zip(full.state_dict().values(), resumed.state_dict().values()):
        assert torch.equal(a, b)
    rows = list(csv.DictReader(open(tmp_path / "resumed" / "metrics.csv")))
    assert [int(r["epoch"]) for r in rows] == list(range(6))  # the CSV continues, no duplicate epochs


def test_nan_loss_stops_and_keeps_last_good_state(tmp_path):
    net = _net()
    trainer = _trainer(tmp_path, max_epochs=5)

    def batches(epoch):
        net.epoch = epoch
        return _batches(epoch)

    net.nan_at_epoch = 2
    with pytest.raises(TrainingDivergedError, match="at epoch 2"):
        trainer.fit(net, batches)
    assert all(torch.isfinite(p).all() for p in net.parameters())
    state = load_state(tmp_path)
    assert state["run"]["next_epoch"] == 2  # the file on disk is the last good epoch
    assert len(state["run"]["history"]) == 2


def test_early_stopping_keeps_best_weights(tmp_path):
    net = _net()
    calls = []

    def val(epoch):
        calls.append(epoch)
        return _batches(0)

    trainer = _trainer(tmp_path, max_epochs=50, patience=2, lr=0.5, lr_schedule=None)
    history = trainer.fit(net, _batches, val)
    best = min(r["val_loss"] for r in history)
    assert trainer.best_loss_ == pytest.approx(best)
    assert trainer.stop_reason_ in ("early_stopping", "max_epochs")
    assert len(history) == len(calls)


def test_csv_and_tensorboard_loggers(tmp_path):
    pytest.importorskip("tensorboard", reason="optional tensorboard package not installed")
    _trainer(tmp_path, max_epochs=2, loggers=("csv", "tensorboard")).fit(_net(), _batches)
    rows = list(csv.DictReader(open(tmp_path / "metrics.csv")))
    assert len(rows) == 2 and {"train_loss", "lr"} <= set(rows[0])
    assert list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))


def test_lr_schedule_cosine_decays(tmp_path):
    history = _trainer(tmp_path, max_epochs=4, checkpoint_dir=None, log_dir=None).fit(_net(), _batches)
    lrs = [r["lr"] for r in history]
    assert lrs[0] == pytest.approx(0.01) and all(a > b for a, b in zip(lrs, lrs[1:]))


def test_gpu_request_without_cuda_fails_clearly():
    if torch.cuda.is_available():
        pytest.skip("CUDA present: the error path needs a machine without GPU")
    with pytest.raises(PathwaysInputError, match="CUDA is not available"):
        resolve_device("cuda")
    with pytest.raises(PathwaysInputError, match="CUDA is not available"):
        Trainer(device="cuda", progress=False).fit(_net(), _batches)
    assert resolve_device("auto").type == "cpu"
    with pytest.raises(PathwaysInputError, match="unknown device"):
        resolve_device("tpu")


def test_mixed_precision_falls_back_on_cpu(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="pathways"):
        history = _trainer(tmp_path, max_epochs=1, precision="16-mixed", checkpoint_dir=None).fit(_net(), _batches)
    assert "needs CUDA" in caplog.text and len(history) == 1
    with pytest.raises(PathwaysInputError, match="precision"):
        _trainer(tmp_path, precision="fp8").fit(_net(), _batches)


def test_configured_keeps_run_settings_and_caps_epochs(tmp_path):
    run = Trainer(progress=False, log_dir=str(tmp_path / "run"), checkpoint_dir=str(tmp_path / "run"), epoch_cap=1,
                  iter_cap=20, precision="bf16")
    trainer = run.configured(max_epochs=30, lr=0.01, batch_size=8, seed=3)
    assert (trainer.max_epochs, trainer.lr, trainer.batch_size, trainer.seed) == (1, 0.01, 8, 3)
    assert trainer.precision == "bf16" and trainer.log_dir == run.log_dir and run.max_epochs == 50  # a copy
    history = trainer.configured(max_epochs=3).fit(_net(), _batches)
    assert len(history) == 1 and run.history == []
    assert (tmp_path / "run" / "metrics.csv").exists() and (tmp_path / "run" / STATE_FILE).exists()
    assert run.iterations(500) == 20 and Trainer().iterations(500) == 500
    with pytest.raises(PathwaysInputError, match="run-level settings"):
        run.configured(precision="32")


@pytest.mark.parametrize("setting,value", [("lr", 0.0), ("lr", float("nan")), ("weight_decay", -1.0),
                                           ("batch_size", 0), ("max_epochs", 0), ("patience", 0),
                                           ("grad_clip", -1.0)])
def test_invalid_settings_are_named(setting, value):
    from pathways.errors import PathwaysInputError
    from pathways.training import Trainer

    trainer = Trainer(progress=False, **{setting: value})
    module = torch.nn.Linear(1, 1)
    with pytest.raises(PathwaysInputError, match=f"trainer setting '{setting}'"):
        trainer.fit(module, lambda epoch: [])
