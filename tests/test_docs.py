"""The documentation site builds in strict mode: tutorials execute, API references resolve, links and anchors exist.

One ``mkdocs build --strict`` of the real site (the tutorials run on tiny simulated data), plus a two-page site
built with the same validation settings to show that a broken link or anchor does fail the build.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "NO_MKDOCS_2_WARNING": "1", "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"}


def _build(config: Path, site: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(config), "-d", str(site)],
                          check=False, cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=300)


def test_site_builds_strict_with_executed_tutorials(tmp_path):
    site = tmp_path / "site"
    proc = _build(ROOT / "mkdocs.yml", site)
    assert proc.returncode == 0, proc.stderr[-4000:]
    claims = (site / "tutorials" / "claims_to_drivers" / "index.html").read_text()
    assert "EventLog(" in claims and "essential hypertension" in claims and "<svg" in claims  # executed output
    safety = (site / "tutorials" / "drug_safety" / "index.html").read_text()
    assert "planted effects," in safety and "false flags among" in safety
    tpp = (site / "tutorials" / "next_event" / "index.html").read_text()
    assert "type accuracy" in tpp and "test log-likelihood per event:" in tpp
    reference = (site / "reference" / "data" / "index.html").read_text()
    assert "pathways.data.labels.CodeLabels" in reference and "omop_concept_labels" in reference
    assert "pathways.plots.plot_excitation_graph" in (site / "reference" / "plots" / "index.html").read_text()
    benchmarks = (site / "benchmarks" / "index.html").read_text()
    for path in (ROOT / "benchmarks" / "results").glob("*.md"):  # every results file, included by the hook
        assert f'id="{path.stem.replace("_", "-")}"' in benchmarks, path.name


def test_broken_link_or_anchor_fails_the_strict_build(tmp_path):
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "index.md").write_text("# Home\n\n[there](other.md#a-section)\n")
    (docs / "other.md").write_text("# Other\n\n## A section\n")
    small = {"site_name": "t", "docs_dir": str(docs), "theme": config["theme"], "strict": True,
             "validation": config["validation"], "markdown_extensions": config["markdown_extensions"],
             "nav": ["index.md", "other.md"]}
    path = tmp_path / "mkdocs.yml"
    path.write_text(yaml.safe_dump(small))
    assert _build(path, tmp_path / "ok").returncode == 0  # the good site builds
    (docs / "index.md").write_text("# Home\n\n[there](other.md#no-such-section)\n")
    failed = _build(path, tmp_path / "anchor")
    assert failed.returncode != 0 and "no-such-section" in failed.stderr
    (docs / "index.md").write_text("# Home\n\n[there](missing.md)\n")
    failed = _build(path, tmp_path / "link")
    assert failed.returncode != 0 and "missing.md" in failed.stderr
