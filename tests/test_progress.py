"""Progress bars: forced on they write a bar with the expected total and a rate; "auto" is silent when stderr is
not a terminal and in CI; one switch (use_progress / trainer.progress) reaches the instrumented loops."""
from __future__ import annotations

import io
import re

import numpy as np
import pytest

from pathways.errors import PathwaysInputError
from pathways.progress import progress_bar, progress_enabled, use_progress


class _Terminal(io.StringIO):
    """A captured stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


def test_forced_on_writes_a_bar_with_total_and_rate():
    stream = io.StringIO()
    for _ in progress_bar(range(7), desc="pairs", unit="pair", progress=True, file=stream):
        pass
    text = stream.getvalue()
    assert re.search(r"pairs: .*7/7 \[.*pair/s\]", text), text


def test_manual_updates_with_total():
    stream = io.StringIO()
    with progress_bar(total=1000, desc="rows", unit="rows", progress=True, file=stream) as bar:
        bar.update(400)
        bar.update(600)
    assert "1000/1000" in stream.getvalue()


def test_auto_is_silent_when_not_a_terminal_and_in_ci(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    quiet = io.StringIO()
    for _ in progress_bar(range(5), desc="x", progress="auto", file=quiet):
        pass
    assert quiet.getvalue() == ""
    assert progress_enabled("auto", file=_Terminal())  # a person at a terminal sees it
    monkeypatch.setenv("CI", "true")
    terminal = _Terminal()
    for _ in progress_bar(range(5), desc="x", progress="auto", file=terminal):
        pass
    assert terminal.getvalue() == "" and not progress_enabled("auto", file=_Terminal())


def test_forced_off_is_silent_even_on_a_terminal():
    terminal = _Terminal()
    assert list(progress_bar(range(3), progress=False, file=terminal)) == [0, 1, 2]
    assert terminal.getvalue() == ""


def test_use_progress_is_the_default_of_loops_and_nests(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    assert not progress_enabled(None, file=io.StringIO())  # auto outside any block, not a terminal
    with use_progress(True):
        assert progress_enabled()
        with use_progress(False):
            assert not progress_enabled(file=_Terminal())
        with use_progress(None):  # None keeps the enclosing setting
            assert progress_enabled()
        assert progress_enabled(False) is False  # an explicit argument wins over the block
    assert not progress_enabled(None, file=io.StringIO())


def test_strings_from_overrides_and_bad_values():
    assert progress_enabled("true") and not progress_enabled("off")
    with pytest.raises(PathwaysInputError, match="progress: expected true, false or 'auto', got 'sometimes'"):
        progress_enabled("sometimes")
    with pytest.raises(PathwaysInputError, match="progress: expected"):
        with use_progress("sometimes"):
            pass


def test_hawkes_iterations_show_one_bar_under_the_switch(capsys):
    from pathways.models import HawkesExpKernel
    from pathways.synthetic import simulate_hawkes

    data = simulate_hawkes(np.array([0.3, 0.2]), np.array([[0.2, 0.0], [0.4, 0.1]]), end=40.0, n_sequences=10,
                           decays=1.0, seed=0)
    with use_progress(True):
        HawkesExpKernel(decay=1.0, max_iter=7, tol=1e-300).fit(data)
    err = capsys.readouterr().err
    assert re.search(r"Hawkes .*\|.*/7 ", err), err
    HawkesExpKernel(decay=1.0, max_iter=7, tol=1e-300).fit(data)  # default "auto": captured stderr is no terminal
    assert capsys.readouterr().err == ""
    # the run's switch: trainer.progress reaches the solver of a full-batch learner
    from pathways.training import Trainer

    HawkesExpKernel(decay=1.0, max_iter=7, tol=1e-300).fit(data, trainer=Trainer(progress=True))
    # dense blocks without covariates: the projected Newton solver, which may converge before max_iter
    assert re.search(r"Hawkes Newton: .*\| [1-7]/7 ", capsys.readouterr().err)
    HawkesExpKernel(decay=1.0, max_iter=7, tol=1e-300).fit(data, trainer=Trainer(progress="false"))
    assert capsys.readouterr().err == ""


def test_trainer_epoch_bar_follows_its_setting(capsys):
    import torch

    from pathways.training import Trainer

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = torch.nn.Linear(1, 1)

        def forward(self, batch):
            return {"loss": ((self.lin(batch) - 1) ** 2).sum(), "n": batch.shape[0]}

    Trainer(max_epochs=3, patience=None, progress=True).fit(Net(), lambda e: [torch.ones(4, 1)])
    assert re.search(r"epochs: .*3/3", capsys.readouterr().err)
    Trainer(max_epochs=3, patience=None).fit(Net(), lambda e: [torch.ones(4, 1)])  # "auto", not a terminal
    assert capsys.readouterr().err == ""


# ---------------------------------------------------------------------------------------------------------------
# the instrumented loops: forced on, each shows one finished bar whose count is its total
# ---------------------------------------------------------------------------------------------------------------
def _finished(err: str, desc: str) -> int:
    """The total of the finished bar labelled ``desc`` (its count equals its total), from captured stderr."""
    found = re.findall(rf"{re.escape(desc)}: 100%.*?\| ([\d.]+[kM]?)/\1 ", err)
    assert found, err
    return found[-1]


def test_anomaly_scoring_by_blocks_equals_one_pass_and_shows_sequences(capsys):
    from pathways.models import HawkesExpKernel
    from pathways.signals import model_anomaly_scores
    from pathways.synthetic import simulate_hawkes

    data = simulate_hawkes(np.array([0.2, 0.1]), np.array([[0.2, 0.1], [0.3, 0.1]]), end=50.0, n_sequences=30,
                           seed=2)
    model = HawkesExpKernel(decay=1.0, max_iter=30).fit(data)
    whole = model_anomaly_scores(model, data, block_size=1000)
    with use_progress(True):
        blocks = model_anomaly_scores(model, data, block_size=7)
    import pandas as pd

    pd.testing.assert_frame_equal(blocks, whole)
    assert _finished(capsys.readouterr().err, "anomaly scoring") == "30"
    with pytest.raises(PathwaysInputError, match="block_size: expected an integer >= 1"):
        model_anomaly_scores(model, data, block_size=0)


def test_detect_shows_the_pairs_it_screens(capsys):
    from pathways.signals import detect
    from pathways.synthetic import simulate_cohort

    log, truth = simulate_cohort(120, seed=0, n_drugs=4, n_diagnoses=2, n_acts=1, n_outcomes=2, n_strong=1,
                                 n_weak=0, follow_up_years=[1.0, 2.0])
    with use_progress(True):
        detect(log, outcomes=truth.outcomes, methods=("SCCS",))
    n_drugs = np.unique(log.code[np.asarray(log.category).astype(object) == "drug"]).size
    assert _finished(capsys.readouterr().err, "detect: SCCS pairs") == str(n_drugs * len(truth.outcomes))


def test_convsccs_cv_grid_shows_every_grid_point(capsys):
    from pathways.models.sccs import ConvSCCSCV
    from pathways.synthetic.sccs import simulate_sccs, step_effect

    data = simulate_sccs(200, 20, np.stack([step_effect(4, 2.0, 0, 3)]), exposure_prob=0.6, seed=3)
    with use_progress(True):
        ConvSCCSCV(n_lags=4, C_tv_grid=[10.0, 100.0, 1000.0], C_group_l1_grid=[100.0, 1000.0], n_folds=2).fit(data)
    assert _finished(capsys.readouterr().err, "ConvSCCS CV grid") == "6"


def test_readers_show_rows_and_shards(tmp_path, capsys):
    pytest.importorskip("duckdb", reason="duckdb is the optional 'omop' extra")
    import importlib.util
    import warnings
    from pathlib import Path

    from pathways.errors import PathwaysDataWarning
    from pathways.io import read_omop
    from pathways.io.meds import read_meds, write_meds

    spec = importlib.util.spec_from_file_location("omop_fixture_for_progress",
                                                  Path(__file__).parent / "io" / "omop_fixture.py")
    fixture = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fixture)
    folder = fixture.write_csv_folder(tmp_path / "omop")
    with use_progress(True), warnings.catch_warnings():
        warnings.simplefilter("ignore", PathwaysDataWarning)  # the fixture is messy on purpose
        log = read_omop(folder)
    rows = _finished(capsys.readouterr().err, "reading events")
    assert float(rows) >= log.n_events > 0
    write_meds(log, tmp_path / "meds", shard_size=1)
    n_shards = len(list((tmp_path / "meds" / "data").rglob("*.parquet")))
    with use_progress(True):
        read_meds(tmp_path / "meds")
    assert n_shards > 1 and _finished(capsys.readouterr().err, "reading MEDS shards") == str(n_shards)
    from pathways.io.meds import shard_bounds

    # one event per shard asked: the last subject's events stay together (this raised IndexError before)
    assert shard_bounds(np.array([0, 0, 1, 1, 1, 2, 2]), 1) == [(0, 2), (2, 5), (5, 7)]


def test_streaming_over_shards_shows_the_shards(tmp_path, capsys):
    from pathways.data.dataset import EventDataset, write_event_dataset
    from pathways.encode.sharded import iter_sequences
    from pathways.synthetic import simulate_cohort

    log, _ = simulate_cohort(40, seed=0, n_drugs=3, n_diagnoses=2, n_acts=1, n_outcomes=1, n_strong=1, n_weak=0,
                             follow_up_years=[1.0, 2.0])
    dataset = EventDataset(write_event_dataset(log, tmp_path / "d", 4, np.arange(log.n_patients) % 4))
    with use_progress(True):
        parts = list(iter_sequences(dataset))
    assert len(parts) == 4 and _finished(capsys.readouterr().err, "shards") == "4"
