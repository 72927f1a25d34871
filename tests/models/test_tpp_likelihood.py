"""Each neural TPP's likelihood against a slow float64 reference (adaptive quadrature, one interval at a time)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import integrate

from pathways.encode.sequences import Sequences
from pathways.models.tpp.lognormmix import LogNormMixModule
from pathways.models.tpp.modules import unpack_batch
from pathways.models.tpp.nhp import NeuralHawkesModule
from pathways.models.tpp.rmtpp import RMTPPModule
from pathways.models.tpp.sahp import SelfAttentiveHawkesModule
from pathways.models.tpp.thp import TransformerHawkesModule

SCALE = 2.5  # a non-unit time scale checks the unit conversions


def _tiny(cls: type) -> torch.nn.Module:
    torch.manual_seed(0)
    kwargs = {"hidden_size": 4}
    if cls in (TransformerHawkesModule, SelfAttentiveHawkesModule):
        kwargs.update(n_layers=1, n_heads=2)
    if cls is LogNormMixModule:
        kwargs.update(n_components=3, log_mean=0.2, log_std=0.9)
    module = cls(2, SCALE, **kwargs).double().eval()
    with torch.no_grad():  # move away from the near-symmetric initialisation so that intensities vary in time
        for p in module.parameters():
            p.add_(0.3 * torch.randn_like(p))
    return module


def _data() -> Sequences:
    """Three windows: a regular history, an empty one (survival only) and one with a tie and a late start."""
    times = np.array([0.4, 1.1, 1.15, 3.0, 6.2, 10.5, 11.0, 11.0, 12.5])
    marks = np.array([0, 1, 1, 0, 1, 0, 1, 0, 1])
    offsets = np.array([0, 5, 5, 9])
    return Sequences(times, marks, offsets, start=np.array([0.0, 0.0, 10.0]), end=np.array([8.0, 5.0, 14.0]),
                     n_codes=2)


def _reference(module: torch.nn.Module, seqs: Sequences) -> np.ndarray:
    """Σ log λ_{k_i}(t_i) - Σ_intervals ∫ Σ_k λ_k by scipy's adaptive quadrature, in the data's time unit."""
    batch = seqs.pad(np.arange(len(seqs)), dtype=torch.float64)
    with torch.no_grad():
        states = module.encode(unpack_batch(batch, module.time_scale))

    def lam(state: torch.Tensor, tau: float) -> np.ndarray:  # original units: λ(τ) = λ_norm(τ / s) / s
        with torch.no_grad():
            value = module.intensity(state[None], torch.tensor([[tau / SCALE]], dtype=torch.float64))
        return value[0, 0].numpy() / SCALE

    out = []
    for b in range(len(seqs)):
        rel = seqs.times[seqs.offsets[b]:seqs.offsets[b + 1]] - seqs.start[b]
        marks = seqs.marks[seqs.offsets[b]:seqs.offsets[b + 1]]
        bounds = np.concatenate([[0.0], rel, [seqs.end[b] - seqs.start[b]]])
        total = 0.0
        for i in range(bounds.size - 1):
            span = bounds[i + 1] - bounds[i]
            integral, _ = integrate.quad(lambda u: lam(states[b, i], u).sum(), 0.0, span, epsabs=1e-12,
                                         epsrel=1e-11, limit=200)
            total -= integral
            if i < rel.size:
                total += np.log(lam(states[b, i], span)[marks[i]])
        out.append(total)
    return np.array(out)


MODULES = [RMTPPModule, NeuralHawkesModule, TransformerHawkesModule, LogNormMixModule, SelfAttentiveHawkesModule]


@pytest.mark.parametrize("cls", MODULES, ids=lambda c: c.__name__)
def test_evaluation_likelihood_matches_float64_reference(cls: type) -> None:
    module, seqs = _tiny(cls), _data()
    ll, n = module.log_likelihood(seqs.pad(np.arange(len(seqs)), dtype=torch.float64), method="quad")
    np.testing.assert_allclose(ll.detach().numpy(), _reference(module, seqs), rtol=1e-7, atol=1e-7)
    assert n.tolist() == [5, 0, 4]


@pytest.mark.parametrize("cls", [NeuralHawkesModule, SelfAttentiveHawkesModule], ids=lambda c: c.__name__)
def test_monte_carlo_compensator_is_unbiased(cls: type) -> None:
    module, seqs = _tiny(cls), _data()
    batch = seqs.pad(np.arange(len(seqs)), dtype=torch.float64)
    torch.manual_seed(1)
    draws = torch.stack([module.log_likelihood(batch, method="mc")[0] for _ in range(400)]).detach().numpy()
    ref = _reference(module, seqs)
    stderr = draws.std(0) / np.sqrt(draws.shape[0])
    assert np.all(np.abs(draws.mean(0) - ref) <= 4 * stderr + 1e-9)
    assert np.all(draws.std(0) < 0.05 * np.abs(ref) + 1e-9)  # stratification keeps the noise small


@pytest.mark.parametrize("cls", MODULES, ids=lambda c: c.__name__)
def test_one_event_steps_reproduce_batched_encoding(cls: type) -> None:
    module, seqs = _tiny(cls), _data()
    batch = seqs.pad(np.arange(len(seqs)), dtype=torch.float64)
    bt = unpack_batch(batch, module.time_scale)
    with torch.no_grad():
        states = module.encode(bt)
        n = len(seqs)
        carry = module.init_carry(n, capacity=bt.marks.shape[1])
        zeros = torch.zeros(n, dtype=torch.float64)
        carry, state = module.step(carry, torch.full((n,), module.n_marks), zeros, zeros)
        stepped = [state]
        for i in range(bt.marks.shape[1]):
            carry, state = module.step(carry, bt.marks[:, i], bt.dt[:, i], bt.t[:, i])
            stepped.append(state)
    stepped = torch.stack(stepped, 1)
    valid = bt.interval_mask
    torch.testing.assert_close(stepped[valid], states[valid], rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("cls", [RMTPPModule, NeuralHawkesModule, TransformerHawkesModule, SelfAttentiveHawkesModule],
                         ids=lambda c: c.__name__)
def test_thinning_bound_dominates_intensity(cls: type) -> None:
    module = _tiny(cls)
    torch.manual_seed(2)
    states = module.encode(unpack_batch(_data().pad(np.arange(3), dtype=torch.float64), module.time_scale))
    states = states.reshape(-1, states.shape[-1]).detach()
    tau0 = torch.rand(states.shape[0], dtype=torch.float64) * 3
    tau1 = tau0 + torch.rand(states.shape[0], dtype=torch.float64) * 4
    grid = tau0[:, None] + (tau1 - tau0)[:, None] * torch.linspace(0, 1, 401, dtype=torch.float64)
    with torch.no_grad():
        lam = module.intensity(states, grid).sum(-1).max(-1).values
        bound = module.upper_bound(states, tau0, tau1)
    assert torch.all(bound >= lam * (1 - 1e-12))


def test_rmtpp_compensator_is_exact_when_w_vanishes() -> None:
    module = _tiny(RMTPPModule)
    with torch.no_grad():
        module.w.fill_(1e-9)
    seqs = _data()
    ll, _ = module.log_likelihood(seqs.pad(np.arange(3), dtype=torch.float64))
    np.testing.assert_allclose(ll.detach().numpy(), _reference(module, seqs), rtol=1e-7)


def test_softplus_area_difference_matches_the_dilogarithm() -> None:
    from scipy.special import spence

    from pathways.models.tpp.thp import _SoftplusAreaDifference

    def area(x: np.ndarray) -> np.ndarray:  # G(x) = -Li2(-e^x) = -spence(1 + e^x)
        return -spence(1 + np.exp(x))

    rng = np.random.default_rng(0)
    x0 = np.concatenate([rng.uniform(-30, 30, 200), [-5.0, 0.0, 0.0, 20.0, -0.3]])
    x1 = np.concatenate([x0[:200] + rng.uniform(-8, 8, 200), [0.0, 3.0, -3.0, 20.5, 0.3]])
    got = _SoftplusAreaDifference.apply(torch.tensor(x0), torch.tensor(x1)).numpy()
    np.testing.assert_allclose(got, area(x1) - area(x0), rtol=1e-12, atol=1e-13)
    args = (torch.tensor(x0[:20], requires_grad=True), torch.tensor(x1[:20], requires_grad=True))
    assert torch.autograd.gradcheck(_SoftplusAreaDifference.apply, args)


@pytest.mark.parametrize("dtype,rtol", [(torch.float64, 1e-10), (torch.float32, 2e-6)])
def test_thp_interval_integral_is_exact_for_every_slope(dtype: torch.dtype, rtol: float) -> None:
    from pathways.models.tpp.thp import softplus_interval_integral

    # slopes on both sides of the narrow/wide switch, zero, tiny, steep; spans from 0 to long; large arguments
    pre = np.array([-3.0, 0.5, 0.5, 2.0, 10.0, -20.0, 1.0, 1.0, 1.0, 40.0, -1.0])
    slope = np.array([-0.1, 0.24, 0.26, -2.0, 5.0, 3.0, 0.0, 1e-9, -0.2, -1.0, 0.125])
    beta = np.array([0.7, 1.0, 1.0, 1.0, 2.0, 0.5, 1.0, 1.0, 1.0, 1.5, 0.5])
    span = np.array([2.0, 1.0, 1.0, 5.0, 0.3, 10.0, 3.0, 3.0, 0.0, 30.0, 1.0])
    ref = [integrate.quad(lambda t: b * np.logaddexp(0, (p + s * t) / b), 0, d, epsabs=0, epsrel=1e-13)[0]
           for p, s, b, d in zip(pre, slope, beta, span)]
    got = softplus_interval_integral(*(torch.tensor(a, dtype=dtype) for a in (pre, slope, beta, span)))
    np.testing.assert_allclose(got.double().numpy(), ref, rtol=rtol, atol=1e-30)
    args = tuple(torch.tensor(a, requires_grad=True) for a in (pre, slope, beta, span))
    assert torch.autograd.gradcheck(softplus_interval_integral, args)


def test_thp_compensator_is_exact_when_alpha_vanishes() -> None:
    module = _tiny(TransformerHawkesModule)
    with torch.no_grad():
        module.alpha.copy_(torch.tensor([0.0, 1e-9]))
    seqs = _data()
    ll, _ = module.log_likelihood(seqs.pad(np.arange(3), dtype=torch.float64))
    np.testing.assert_allclose(ll.detach().numpy(), _reference(module, seqs), rtol=1e-7)


def test_training_objective_is_summed_nll_and_event_count() -> None:
    module, seqs = _tiny(RMTPPModule), _data()
    batch = seqs.pad(np.arange(3), dtype=torch.float64)
    out = module(batch)
    assert int(out["n"]) == 9
    np.testing.assert_allclose(float(out["loss"].detach()), -_reference(module, seqs).sum(), rtol=1e-7)


def test_rmtpp_hand_written_rnn_backward_matches_autograd() -> None:
    from pathways.models.tpp.rmtpp import _TanhRNN

    torch.manual_seed(3)
    pre = torch.randn(3, 6, 4, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(4, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(_TanhRNN.apply, (pre, h0, weight))
    rnn = torch.nn.RNN(4, 4, batch_first=True).double()
    x = torch.randn(3, 6, 4, dtype=torch.float64)
    mine = _TanhRNN.apply(torch.nn.functional.linear(x, rnn.weight_ih_l0, rnn.bias_ih_l0 + rnn.bias_hh_l0),
                          torch.zeros(3, 4, dtype=torch.float64), rnn.weight_hh_l0)
    torch.testing.assert_close(mine, rnn(x)[0])


def test_rmtpp_folded_input_projection_equals_the_modules() -> None:
    """encode (one-hot and gap features through one folded matrix, then _TanhRNN) gives nn.RNN(embed + time_in)'s
    states and the same parameter gradients."""
    module, seqs = _tiny(RMTPPModule), _data()
    bt = unpack_batch(seqs.pad(np.arange(len(seqs)), dtype=torch.float64), module.time_scale)
    mine = module.encode(bt)
    marks = torch.nn.functional.pad(bt.marks, (1, 0), value=module.n_marks)
    ref = module.rnn(module._inputs(marks, torch.nn.functional.pad(bt.dt, (1, 0))))[0]
    torch.testing.assert_close(mine, ref, rtol=1e-12, atol=1e-12)
    params = list(module.parameters())
    g_mine = torch.autograd.grad(mine.pow(2).sum(), params, allow_unused=True)
    g_ref = torch.autograd.grad(ref.pow(2).sum(), params, allow_unused=True)
    for name, a, b in zip([n for n, _ in module.named_parameters()], g_mine, g_ref):
        if b is None:
            assert a is None, name
        else:
            torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12, msg=name)


def test_gru_scan_matches_torch_gru_values_and_gradients() -> None:
    from pathways.models.tpp.modules import _GRUScan, run_gru

    torch.manual_seed(4)
    rnn = torch.nn.GRU(4, 5, batch_first=True).double()
    x = torch.randn(3, 7, 4, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(3, 5, dtype=torch.float64, requires_grad=True)
    params = (rnn.weight_ih_l0, rnn.weight_hh_l0, rnn.bias_ih_l0, rnn.bias_hh_l0)
    gi = torch.randn(3, 7, 15, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(_GRUScan.apply, (gi, h0, rnn.weight_hh_l0, rnn.bias_hh_l0))
    mine, ref = run_gru(rnn, x, h0), rnn(x, h0[None])[0]
    torch.testing.assert_close(mine, ref)
    weights = torch.randn_like(ref)
    grads_mine = torch.autograd.grad((mine * weights).sum(), (x, h0, *params))
    grads_ref = torch.autograd.grad((ref * weights).sum(), (x, h0, *params))
    for a, b in zip(grads_mine, grads_ref):
        torch.testing.assert_close(a, b)


def test_lognormmix_folded_inputs_equal_the_modules() -> None:
    """Training-mode encode (embedding, gap features and the GRU's input projection folded into one matmul, then the
    scan) gives nn.GRU(embed + time_in)'s states and the same parameter gradients."""
    module, seqs = _tiny(LogNormMixModule), _data()
    bt = unpack_batch(seqs.pad(np.arange(len(seqs)), dtype=torch.float64), module.time_scale)
    mine = module.encode(bt)
    with torch.no_grad():
        torch.testing.assert_close(module.encode(bt), mine.detach(), rtol=1e-12, atol=1e-12)  # nn.GRU path
    marks = torch.nn.functional.pad(bt.marks, (1, 0), value=module.n_marks)
    ref = module.rnn(module._inputs(marks, torch.nn.functional.pad(bt.dt, (1, 0))))[0]
    names, params = zip(*module.named_parameters())
    weights = torch.randn_like(ref)
    g_mine = torch.autograd.grad((mine * weights).sum(), params, allow_unused=True)
    g_ref = torch.autograd.grad((ref * weights).sum(), params, allow_unused=True)
    for name, a, b in zip(names, g_mine, g_ref):
        if b is None:
            assert a is None, name
        else:
            torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12, msg=name)


def test_event_embedding_equals_embedding_plus_linear() -> None:
    from pathways.models.tpp.modules import event_embedding, time_features

    torch.manual_seed(7)
    embed, time_in = torch.nn.Embedding(4, 6).double(), torch.nn.Linear(2, 6).double()
    marks, dt = torch.randint(0, 4, (3, 5)), torch.rand(3, 5, dtype=torch.float64) * 3
    mine, ref = event_embedding(embed, time_in, marks, dt), embed(marks) + time_in(time_features(dt))
    torch.testing.assert_close(mine, ref, rtol=1e-12, atol=1e-12)
    params = (embed.weight, time_in.weight, time_in.bias)
    weights = torch.randn_like(ref)
    for a, b in zip(torch.autograd.grad((mine * weights).sum(), params),
                    torch.autograd.grad((ref * weights).sum(), params)):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("n_heads", [1, 2])
def test_thp_written_out_layers_equal_torch_transformer_encoder(n_heads: int) -> None:
    torch.manual_seed(5)
    module = TransformerHawkesModule(3, SCALE, hidden_size=8, n_layers=2, n_heads=n_heads).double().eval()
    x = torch.randn(4, 9, 8, dtype=torch.float64)
    causal = torch.nn.Transformer.generate_square_subsequent_mask(9, dtype=torch.float64)
    ref = module.encoder(x, mask=causal, is_causal=True)
    from pathways.models.tpp.thp import _causal_layer

    mine = x
    for layer in module.encoder.layers:
        mine = _causal_layer(layer, mine)
    torch.testing.assert_close(mine, ref, rtol=1e-12, atol=1e-12)
    module.train()  # dropout 0: training mode computes the same
    torch.testing.assert_close(_causal_layer(module.encoder.layers[0], x),
                               module.encoder.layers[0](x, src_mask=causal, is_causal=True), rtol=1e-12, atol=1e-12)


def test_nhp_hand_written_backward_matches_autograd() -> None:
    from pathways.models.tpp.nhp import _ct_lstm_forward, _CTLSTMScan

    torch.manual_seed(6)
    gx = torch.randn(3, 6, 7 * 4, dtype=torch.float64, requires_grad=True)
    dt = torch.rand(3, 6, dtype=torch.float64)
    weight = torch.randn(7 * 4, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda g, w: _CTLSTMScan.apply(g, dt, w), (gx, weight))
    mine, ref = _CTLSTMScan.apply(gx, dt, weight), _ct_lstm_forward(gx, dt, weight)
    torch.testing.assert_close(mine, ref)
    weights = torch.randn_like(ref)
    for a, b in zip(torch.autograd.grad((mine * weights).sum(), (gx, weight)),
                    torch.autograd.grad((ref * weights).sum(), (gx, weight))):
        torch.testing.assert_close(a, b)
