"""The Trainer's optimiser: AdamW over one flat buffer holding every trainable parameter.

A training step of the small networks trained here (a few thousand to a few hundred thousand weights in tens of
tensors) spends a large share of its time on per-tensor work after the backward pass: zeroing, clipping and the
AdamW update each ran a handful of ops per parameter tensor. :class:`FlatAdamW` makes every trainable parameter a
view of one contiguous tensor, and every gradient a view of another, so that zeroing the gradients is one op, the
gradient norm one op and the scaling one op, and the update is one fused AdamW kernel. AdamW is elementwise, so
the updates are those of ``torch.optim.AdamW`` over the separate tensors with the same settings.

Autograd accumulates into an existing ``.grad`` in place, so the gradient views stay views of the flat buffer as
long as they are never set to None (``zero_grad`` zeroes the buffer whatever ``set_to_none`` says).
"""
from __future__ import annotations

from typing import Any, Iterable

import torch

__all__ = ["FlatAdamW", "make_optimizer", "clip_gradients"]


def _fused_ok(params: list[torch.Tensor]) -> bool:
    """Whether torch has a fused AdamW kernel for these tensors (floating point, CPU or CUDA)."""
    return all(p.is_floating_point() and p.device.type in ("cpu", "cuda") for p in params)


class FlatAdamW(torch.optim.AdamW):
    """``torch.optim.AdamW`` stepping one flat tensor whose slices are the module's trainable parameters.

    Parameters
    ----------
    params : the trainable parameters (same dtype and device; see :func:`make_optimizer`).
    lr, weight_decay : AdamW settings.

    Attributes
    ----------
    flat : the 1-D tensor every parameter is a view of; ``flat.grad`` holds every gradient.
    views : the parameters, in the order of their slices.

    Examples
    --------
    >>> lin = torch.nn.Linear(3, 2)
    >>> opt = FlatAdamW(list(lin.parameters()), lr=0.1)
    >>> opt.flat.numel(), lin.weight.untyped_storage().data_ptr() == opt.flat.untyped_storage().data_ptr()
    (32, True)
    """

    def __init__(self, params: list[torch.Tensor], lr: float = 1e-3, weight_decay: float = 0.0) -> None:
        self.views = list(params)
        first = self.views[0]
        # every slice starts on a 64-byte boundary, as a tensor of its own would: BLAS kernels pick their code path by
        # alignment, and a model must compute the same bits after a checkpoint round trip (the gaps stay zero: zero
        # gradient, zero update)
        align = max(64 // first.element_size(), 1)
        starts, offset = [], 0
        for p in self.views:
            starts.append(offset)
            offset += -(-p.numel() // align) * align
        flat = first.new_zeros(offset)
        flat.grad = torch.zeros_like(flat)
        for p, start in zip(self.views, starts):
            n = p.numel()
            flat[start:start + n] = p.detach().reshape(-1)
            p.data = flat[start:start + n].view_as(p)
            p.grad = flat.grad[start:start + n].view_as(p)
        self.flat, self.starts = flat, starts
        super().__init__([flat], lr=lr, weight_decay=weight_decay, fused=_fused_ok([first]) or None)

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Zero the flat gradient buffer (the parameters' ``.grad`` stay its views, never None)."""
        self.flat.grad.zero_()

    def clip_grad_norm_(self, max_norm: float) -> torch.Tensor:
        """``torch.nn.utils.clip_grad_norm_`` on every gradient at once: one norm, one scaling; returns the norm."""
        grad = self.flat.grad
        norm = torch.linalg.vector_norm(grad)
        grad.mul_(torch.clamp(max_norm / (norm + 1e-6), max=1.0))
        return norm

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load a state written by this class, or by ``torch.optim.AdamW`` over the same parameters one tensor each
        (a trainer state saved before the flat buffer): the per-tensor moments are concatenated in order."""
        saved = state_dict["param_groups"][0]["params"]
        if len(saved) == len(self.views) and len(self.views) != 1:
            state = state_dict["state"]
            moments = {}
            for key in ("exp_avg", "exp_avg_sq"):
                moments[key] = torch.zeros_like(self.flat)
                for i, p, start in zip(saved, self.views, self.starts):
                    if i in state:
                        moments[key][start:start + p.numel()] = state[i][key].reshape(-1)
            steps = [state[i]["step"] for i in saved if i in state]
            flat_state = {0: {"step": torch.as_tensor(max((float(s) for s in steps), default=0.0)), **moments}} \
                if steps else {}
            group = dict(state_dict["param_groups"][0], params=[0])
            state_dict = {"state": flat_state, "param_groups": [group]}
        super().load_state_dict(state_dict)


def make_optimizer(params: Iterable[torch.Tensor], lr: float, weight_decay: float,
                   flat: bool = True) -> torch.optim.Optimizer:
    """The Trainer's AdamW: :class:`FlatAdamW` when ``flat`` and the trainable parameters share a dtype and device,
    else ``torch.optim.AdamW`` over the tensors (fused where torch has the kernel, else its foreach form).

    ``flat=False`` under data-parallel training: DDP reduces each parameter's gradient into its own buckets.
    """
    params = [p for p in params if p.requires_grad]
    if flat and params and len({(p.dtype, p.device) for p in params}) == 1:
        return FlatAdamW(params, lr=lr, weight_decay=weight_decay)
    fused = bool(params) and _fused_ok(params)
    return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, fused=fused or None,
                             foreach=None if fused else True)


def clip_gradients(module: torch.nn.Module, optimizer: torch.optim.Optimizer, max_norm: float) -> None:
    """Scale the gradients so that their global norm is at most ``max_norm`` (one buffer with :class:`FlatAdamW`)."""
    if isinstance(optimizer, FlatAdamW):
        optimizer.clip_grad_norm_(max_norm)
    else:
        torch.nn.utils.clip_grad_norm_(module.parameters(), max_norm, foreach=True)
