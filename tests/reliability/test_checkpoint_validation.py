"""Checkpoints edited with a recomputed digest (issue 12): the digest check passes, so the stored state itself is
validated at load. Each case asserts the error type and the words that name the problem."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from pathways.checkpoint import CheckpointError, _digest, load, save
from pathways.models import RMTPP, HawkesExpKernel
from pathways.synthetic import simulate_cohort


@pytest.fixture(scope="module")
def log():
    events, _ = simulate_cohort(40, seed=1, n_drugs=3, n_diagnoses=2, n_acts=1, n_outcomes=1, n_strong=1, n_weak=0,
                                follow_up_years=[1.0, 2.0])
    return events


@pytest.fixture(scope="module")
def hawkes_file(log, tmp_path_factory):
    model = HawkesExpKernel(decay=1.0, max_iter=30).fit(log)
    assert model.vocab_ is not None and model.n_codes_ >= 3
    return save(model, tmp_path_factory.mktemp("ckpt") / "hawkes.pt")


@pytest.fixture(scope="module")
def rmtpp_file(log, tmp_path_factory):
    model = RMTPP(hidden_size=4, max_epochs=1, batch_size=16, device="cpu", seed=0, progress=False).fit(log)
    return save(model, tmp_path_factory.mktemp("ckpt") / "rmtpp.pt")


def forged(source: Path, target: Path, edit_header=None, edit_arrays=None) -> Path:
    """A copy of ``source`` with its JSON header and/or tensors edited and the digest recomputed (it passes the
    integrity check: only validation of the content can refuse it)."""
    with safe_open(str(source), framework="pt") as fh:
        metadata = dict(fh.metadata())
        arrays = {k: fh.get_tensor(k).clone() for k in fh.keys()}
    header = json.loads(metadata["header"])
    if edit_header is not None:
        edit_header(header)
    if edit_arrays is not None:
        edit_arrays(arrays)
    metadata["header"] = json.dumps(header, sort_keys=True)
    metadata["digest"] = _digest(metadata["header"], arrays)
    save_file(arrays, str(target), metadata=metadata)
    return target


def _param(name, value):
    return lambda header: header["params"].update({name: value})


def _drop_last_code(header, *, everywhere: bool):
    vocab = header["meta"]["vocab_"]["__vocabulary__"]
    vocab["codes"], vocab["counts"] = vocab["codes"][:-1], vocab["counts"][:-1]
    if everywhere:  # a careful forger keeps n_codes_ and codes_ in line with the shortened vocabulary
        header["meta"]["n_codes_"] -= 1
        header["meta"]["codes_"]["__object_array__"] = header["meta"]["codes_"]["__object_array__"][:-1]


HAWKES_CASES = {
    # parameters, validated as fit would, naming the parameter
    "decay=-1": (_param("decay", -1), None, r"invalid parameter: decay: expected"),
    "decay='abc'": (_param("decay", "abc"), None, r"invalid parameter: .*'?decay'?"),
    "decay=0": (_param("decay", 0.0), None, r"invalid parameter: decay"),
    "max_iter=0": (_param("max_iter", 0), None, r"invalid parameter: max_iter"),
    "C=-5": (_param("C", -5.0), None, r"invalid parameter: C"),
    "penalty unknown": (_param("penalty", "l7"), None, r"invalid parameter: penalty"),
    "elastic_net_ratio=2": (_param("elastic_net_ratio", 2.0), None, r"invalid parameter: elastic_net_ratio"),
    # vocabulary against the weights
    "vocabulary shorter than n_codes_": (lambda h: _drop_last_code(h, everywhere=False), None,
                                         r"numbers of codes differ \(n_codes_ \d+, vocab_ \d+, codes_ \d+\)"),
    "vocabulary shorter than weights": (lambda h: _drop_last_code(h, everywhere=True), None,
                                        r"learned array '\w+_' has shape \(\d+.*\) but the vocabulary has \d+ codes"),
    "baseline shorter than vocabulary": (None, lambda a: a.update(baseline_=a["baseline_"][:-1]),
                                         r"'baseline_' has shape \(\d+,\) but the vocabulary has \d+ codes"),
    "adjacency not square": (None, lambda a: a.update(adjacency_=a["adjacency_"][:, :-1].contiguous()),
                             r"'adjacency_' has shape .* the vocabulary and the weights do not match"),
    "adjacency NaN": (None, lambda a: a["adjacency_"].fill_(float("nan")), r"'adjacency_' holds NaN or infinite"),
    "learned decays negative": (None, lambda a: a.update(decays_=-a["decays_"]),
                                r"learned 'decays_' must be finite and > 0"),
    "learned decay zero": (lambda h: h["meta"].update(decay_=0.0), None, r"learned 'decay_' must be finite and > 0"),
}


@pytest.mark.parametrize("case", sorted(HAWKES_CASES))
def test_forged_hawkes_checkpoint_is_refused(case, hawkes_file, tmp_path):
    edit_header, edit_arrays, words = HAWKES_CASES[case]
    path = forged(hawkes_file, tmp_path / "forged.pt", edit_header, edit_arrays)
    with pytest.raises(CheckpointError, match=words):
        load(path)


def test_unedited_copy_loads(hawkes_file, log, tmp_path):
    """The forging helper itself changes nothing when no edit is given: the refusals above come from the edits."""
    original = load(hawkes_file)
    copy = load(forged(hawkes_file, tmp_path / "copy.pt"))
    np.testing.assert_array_equal(copy.adjacency_, original.adjacency_)
    assert copy.score(log) == original.score(log)


RMTPP_CASES = {
    "hidden_size=0": (_param("hidden_size", 0), r"invalid parameter: hidden_size: expected an integer >= 1"),
    "lr=-1": (_param("lr", -1.0), r"invalid parameter: lr: expected a number > 0"),
    "vocabulary shorter than n_codes_": (lambda h: _drop_last_code_tpp(h, everywhere=False),
                                         r"numbers of codes differ \(n_codes_ \d+, vocab_ \d+\)"),
    "vocabulary shorter than the network": (lambda h: _drop_last_code_tpp(h, everywhere=True),
                                            r"(?s)incompatible .*size mismatch for embed.weight"),
}


def _drop_last_code_tpp(header, *, everywhere: bool):
    vocab = header["meta"]["vocab_"]["__vocabulary__"]
    vocab["codes"], vocab["counts"] = vocab["codes"][:-1], vocab["counts"][:-1]
    if everywhere:
        header["meta"]["n_codes_"] -= 1


@pytest.mark.parametrize("case", sorted(RMTPP_CASES))
def test_forged_neural_checkpoint_is_refused(case, rmtpp_file, tmp_path):
    edit_header, words = RMTPP_CASES[case]
    with pytest.raises(CheckpointError, match=words):
        load(forged(rmtpp_file, tmp_path / "forged.pt", edit_header))


def test_refusal_happens_before_the_estimator_is_built(hawkes_file, tmp_path, monkeypatch):
    """Shapes are checked on the stored state: import_state is never reached for an inconsistent vocabulary."""
    path = forged(hawkes_file, tmp_path / "forged.pt", lambda h: _drop_last_code(h, everywhere=True))
    monkeypatch.setattr(HawkesExpKernel, "import_state",
                        classmethod(lambda cls, state: pytest.fail("built before validation")))
    with pytest.raises(CheckpointError, match="vocabulary"):
        load(path)
    assert torch.is_tensor(torch.zeros(1))  # the patch did not break torch itself


def test_save_onto_a_directory_is_refused_before_writing(hawkes_file, tmp_path):
    """``save(model, <existing folder>)`` names the problem (a directory of that name) and writes nothing there."""
    model = load(hawkes_file)
    folder = tmp_path / "runs"
    folder.mkdir()
    (folder / "keep.txt").write_text("already here")
    from pathways.errors import PathwaysInputError
    with pytest.raises(PathwaysInputError, match="'runs': a directory of that name exists"):
        save(model, folder)
    assert sorted(p.name for p in folder.iterdir()) == ["keep.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["runs"]  # no temporary file left beside it
