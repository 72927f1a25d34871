"""``import pathways`` (and the encoders) stays light: torch is imported only when a tensor is asked for."""
import subprocess
import sys


def test_import_pathways_and_encoders_does_not_import_torch():
    code = ("import sys, pathways, pathways.encode, pathways.io, pathways.cohort, pathways.synthetic; "
            "assert 'torch' not in sys.modules, 'torch imported'")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
