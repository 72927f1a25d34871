"""Atomic writes (issue 12): temporary files left by a kill are cleaned by the next write of the same target, and
data is fsynced before the rename (``pathways.utils.atomic_path``, used by checkpoints, trainer state and reports)."""
from __future__ import annotations

import os
import signal

import pytest

from pathways.training.state import load_state, save_state
from pathways.utils import atomic_path

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="the kill -9 cases fork a child process")


def _killed_mid_write(target) -> None:
    """A child process opens an atomic write of ``target``, writes half of it and is killed with SIGKILL."""
    pid = os.fork()
    if pid == 0:
        try:
            with atomic_path(target) as tmp:
                tmp.write_text("half a fi")
                os.kill(os.getpid(), signal.SIGKILL)
        finally:
            os._exit(3)
    _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL


def _temporaries(folder, name: str) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(f".{name}.") and p.name.endswith(".tmp"))


def test_kill_mid_write_keeps_the_old_file_and_the_next_write_cleans_up(tmp_path):
    target = tmp_path / "factors.csv"
    target.write_text("old, complete")
    _killed_mid_write(target)
    _killed_mid_write(target)
    assert target.read_text() == "old, complete"  # never half-written
    # the second writer already removed the first one's debris; its own is left
    assert len(_temporaries(tmp_path, "factors.csv")) == 1
    with atomic_path(target) as tmp:
        tmp.write_text("new, complete")
    assert target.read_text() == "new, complete"
    assert _temporaries(tmp_path, "factors.csv") == []


def test_temporaries_of_live_writers_and_other_targets_are_kept(tmp_path):
    target = tmp_path / "model.pt"
    live = tmp_path / f".model.pt.{os.getppid()}.abc.tmp"  # our parent process runs: its write is in progress
    other = tmp_path / ".report.md.999999999.abc.tmp"  # another target's debris waits for that target's write
    live.write_text("x")
    other.write_text("x")
    with atomic_path(target) as tmp:
        tmp.write_text("ok")
    assert live.exists() and other.exists() and target.read_text() == "ok"


def test_data_is_fsynced_before_the_rename(tmp_path, monkeypatch):
    calls: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: calls.append("fsync") or real_fsync(fd))
    monkeypatch.setattr(os, "replace", lambda a, b: calls.append("replace") or real_replace(a, b))
    with atomic_path(tmp_path / "metrics.json") as tmp:
        tmp.write_text("{}")
    assert calls == ["fsync", "replace", "fsync"]  # the file, the rename, then the folder entry


def test_failed_block_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "summary.json"
    target.write_text("previous")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("partial")
            raise RuntimeError("interrupted")
    assert target.read_text() == "previous" and _temporaries(tmp_path, "summary.json") == []


def test_trainer_state_killed_mid_save_is_cleaned_and_the_last_state_loads(tmp_path):
    import torch

    save_state(tmp_path, {"epoch": torch.tensor(1)})
    _killed_mid_write(tmp_path / "trainer_state.pt")
    assert int(load_state(tmp_path)["epoch"]) == 1  # the last complete epoch's state
    save_state(tmp_path, {"epoch": torch.tensor(2)})
    assert int(load_state(tmp_path)["epoch"]) == 2 and _temporaries(tmp_path, "trainer_state.pt") == []
