"""float64 versions of a TPP and a recurrent model for the multi-process tests: they compare the sharded arithmetic,
not float32 rounding that Adam amplifies (one process on 1 vs 2 threads already differs by 1e-5 after a dozen
float32 steps)."""
from __future__ import annotations

from pathways.models.recurrent import DenseBatcher, GRUOutcome
from pathways.models.tpp import RMTPP


class RMTPP64(RMTPP):
    def _build_module(self):
        return super()._build_module().double()


class Batcher64(DenseBatcher):
    def batch(self, idx):
        return {k: v.double() if v.is_floating_point() else v for k, v in super().batch(idx).items()}


class GRU64(GRUOutcome):
    def _build_module(self):
        return super()._build_module().double()

    def _batcher(self, data, device):
        return Batcher64(data, transform=self.transform, max_bins=self.max_bins, static_mean=self.static_mean_,
                         static_scale=self.static_scale_, device=device)
