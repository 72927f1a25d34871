"""`python scripts/predict.py [overrides]`: thin Hydra entry point, same as the console script of pathways.pipelines.cli.predict.

See docs/experiments.md for the configs and overrides.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # a source checkout runs without installing

from pathways.pipelines.cli import predict  # noqa: E402

if __name__ == "__main__":
    predict()
