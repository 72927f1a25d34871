"""The wheel ships the configs: an installed (non-editable) copy runs the main job from an empty directory.

The wheel is built with ``pip wheel --no-deps .`` and installed with ``pip install --no-deps --target``; its console
script runs with ``PYTHONPATH`` pointing at that target, so the installed copy, not the source tree, is imported
(the dependencies come from the current environment).
"""
from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TINY = ["data.n_patients=60", "+data.n_drugs=6", "+data.n_diagnoses=3", "+data.n_acts=1", "+data.n_outcomes=2",
        "+data.n_strong=1", "+data.n_weak=1", "+data.follow_up_years=[1.0,2.0]", "trainer=debug"]


def _pip(*args: str, cwd: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "pip", *args, "--quiet"], cwd=cwd,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"pip {args[0]} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A target folder holding the installed wheel of this source tree."""
    tmp = tmp_path_factory.mktemp("wheel")
    _pip("wheel", "--no-deps", "--wheel-dir", str(tmp / "dist"), str(ROOT), cwd=tmp)
    (wheel,) = (tmp / "dist").glob("pathways-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "pathways/configs/config.yaml" in names and "pathways/configs/hparams_search/hawkes_optuna.yaml" in names
    assert "pathways/configs/model/hawkes_exp.yaml" in names and "pathways/py.typed" in names
    _pip("install", "--no-deps", "--target", str(tmp / "site"), str(wheel), cwd=tmp)
    return tmp / "site"


def _run(installed: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(installed), "OMP_NUM_THREADS": "1", "HYDRA_FULL_ERROR": "1"}
    proc = subprocess.run([sys.executable, str(installed / "bin" / "pathways-train"), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"pathways-train failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


def test_installed_copy_is_the_one_imported(installed, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(installed)}
    proc = subprocess.run([sys.executable, "-c", "import pathways.pipelines.cli as c; print(c.CONFIG_DIR)"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert Path(proc.stdout.strip()) == installed / "pathways" / "configs"


def test_cfg_job_prints_the_composed_config(installed, tmp_path):
    proc = _run(installed, "--cfg", "job", cwd=tmp_path)
    assert "name: care_pathway_drivers" in proc.stdout and "pathways.models.HawkesExpKernel" in proc.stdout
    assert not any(tmp_path.iterdir())  # printing the config runs nothing


def test_main_job_runs_from_an_empty_directory(installed, tmp_path):
    proc = _run(installed, *TINY, cwd=tmp_path)
    assert list(tmp_path.glob("checkpoints/care_pathway_drivers.pt"))
    assert list(tmp_path.glob("outputs/care_pathway_drivers/*/report/report.md"))
    assert "train done" in proc.stdout
