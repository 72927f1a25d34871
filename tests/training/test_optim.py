"""The Trainer's flat AdamW: same updates as torch's AdamW over the separate tensors, clipping as clip_grad_norm_,
aligned slices, and trainer states saved by the per-tensor optimizer still load."""
from __future__ import annotations

import torch

from pathways.training.optim import FlatAdamW, clip_gradients, make_optimizer


def _net() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(3, 5), torch.nn.Tanh(), torch.nn.Linear(5, 1)).double()


def _step(net: torch.nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor, clip: bool) -> None:
    opt.zero_grad()
    (net(x) ** 2).sum().backward()
    if clip:
        clip_gradients(net, opt, 0.5)
    opt.step()


def _reference_step(net: torch.nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor) -> None:
    opt.zero_grad()
    (net(x) ** 2).sum().backward()
    torch.nn.utils.clip_grad_norm_(net.parameters(), 0.5)
    opt.step()


def test_flat_adamw_follows_per_tensor_adamw_with_clipping() -> None:
    ours, ref = _net(), _net()
    opt = make_optimizer(ours.parameters(), lr=0.05, weight_decay=0.01)
    assert isinstance(opt, FlatAdamW)
    ref_opt = torch.optim.AdamW(ref.parameters(), lr=0.05, weight_decay=0.01, foreach=False)
    x = torch.randn(16, 3, dtype=torch.float64)
    for _ in range(20):
        _step(ours, opt, x, clip=True)
        _reference_step(ref, ref_opt, x)
    for a, b in zip(ours.parameters(), ref.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
    assert not torch.equal(next(ours.parameters()), next(_net().parameters()))  # it did train


def test_flat_slices_are_aligned_and_padding_stays_zero() -> None:
    net = _net()
    opt = make_optimizer(net.parameters(), lr=0.05, weight_decay=0.1)
    for p in net.parameters():
        assert p.data_ptr() % 64 == 0 and p.grad.data_ptr() % 64 == 0
        assert p.grad.untyped_storage().data_ptr() == opt.flat.grad.untyped_storage().data_ptr()
    x = torch.randn(8, 3, dtype=torch.float64)
    for _ in range(3):
        _step(net, opt, x, clip=True)
    used = torch.zeros_like(opt.flat, dtype=torch.bool)
    for p, start in zip(opt.views, opt.starts):
        used[start:start + p.numel()] = True
    assert (~used).any() and torch.all(opt.flat[~used] == 0)


def test_per_tensor_state_loads_into_flat_optimizer() -> None:
    net, ref = _net(), _net()
    ref_opt = torch.optim.AdamW(ref.parameters(), lr=0.05, foreach=False)
    x = torch.randn(8, 3, dtype=torch.float64)
    for _ in range(3):
        _reference_step(ref, ref_opt, x)
    net.load_state_dict(ref.state_dict())
    opt = make_optimizer(net.parameters(), lr=0.05, weight_decay=0.0)
    opt.load_state_dict(ref_opt.state_dict())  # a trainer state written before the flat buffer
    for _ in range(2):
        _step(net, opt, x, clip=True)
        _reference_step(ref, ref_opt, x)
    for a, b in zip(net.parameters(), ref.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def test_mixed_dtypes_fall_back_to_torch_adamw() -> None:
    net = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Linear(2, 2).double())
    opt = make_optimizer(net.parameters(), lr=0.1, weight_decay=0.0)
    assert type(opt) is torch.optim.AdamW
