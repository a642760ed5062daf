"""The float network: delay kernels, gradients (gradcheck, float64), semantics against plain
per-sample loops written from the formulas in the docstrings."""

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from delayhw.train.kernels import DelayKernel, round_half_up, spread  # noqa: E402
from delayhw.train.layers import (DelayedLinear, DelayNet, LIFLayer, NetConfig,  # noqa: E402
                                  Readout, atan_spike)

KINDS = ["linear", "triangle", "gaussian"]


def kernel_reference(p: float, bins: np.ndarray, kind: str, width: float) -> np.ndarray:
    """The kernels of kernels.py's docstring, one synapse at a time."""
    x = bins - p
    if kind in ("linear", "hard"):
        return np.maximum(0.0, 1 - np.abs(x))
    k = np.maximum(0.0, 1 - np.abs(x) / width) if kind == "triangle" else np.exp(-0.5 * (x / width) ** 2)
    return k / k.sum()


def delayed_reference(x, w, d, bias, bins, kind, width):
    """y[b,t,j] = sum_i w[j,i] sum_k K(k; d[j,i]) x[b, t-k, i] + bias[j], by loops."""
    batch, steps, n_in = x.shape
    n_out = w.shape[0]
    y = np.zeros((batch, steps, n_out))
    for j in range(n_out):
        for i in range(n_in):
            k = kernel_reference(d[j, i], bins, kind, width)
            for m, delay in enumerate(bins):
                for t in range(delay, steps):
                    y[:, t, j] += w[j, i] * k[m] * x[:, t - delay, i]
    return y + (0 if bias is None else bias)


def make_linear(kind, n_in=3, n_out=2, d_max=5, d_min=0, progress=0.2, bias=True, seed=0):
    torch.manual_seed(seed)
    kernel = DelayKernel(kind, d_max)
    kernel.set_progress(progress)
    lin = DelayedLinear(n_in, n_out, d_max, kernel, d_min=d_min, bias=bias).double()
    with torch.no_grad():
        # non-integer delays away from bin centres and from the range ends
        lin.delay.copy_(d_min + 0.3 + torch.rand(n_out, n_in, dtype=torch.float64) * (d_max - d_min - 0.6))
        if bias:
            lin.bias.uniform_(-1, 1)
    return lin


# ----------------------------------------------------------------------------- kernels


@pytest.mark.parametrize("kind", KINDS)
def test_kernels_match_their_formulas_and_sum_to_one(kind):
    bins = torch.arange(0, 9)
    p = torch.tensor([0.0, 0.2, 3.5, 4.75, 8.0], dtype=torch.float64)
    width = 2.3 if kind != "linear" else 1.0
    got = spread(p, bins, kind, width).numpy()
    for row, pi in zip(got, p.tolist()):
        np.testing.assert_allclose(row, kernel_reference(pi, bins.numpy(), kind, width), atol=1e-12)
        assert row.sum() == pytest.approx(1.0)


def test_linear_kernel_at_integers_is_one_hot_and_triangle_of_width_one_is_linear():
    bins = torch.arange(0, 7)
    p = torch.tensor([0.0, 3.0, 6.0, 2.4], dtype=torch.float64)
    hard = spread(p[:3], bins, "linear", 1.0)
    assert torch.equal(hard, torch.nn.functional.one_hot(p[:3].long(), 7).double())
    assert torch.allclose(spread(p, bins, "triangle", 1.0), spread(p, bins, "linear", 1.0))


@pytest.mark.parametrize("kind,final", [("triangle", 1.0), ("gaussian", 0.5), ("linear", 1.0)])
def test_width_schedule_shrinks_to_its_final_value_then_straight_through(kind, final):
    k = DelayKernel(kind, 12)
    k.set_progress(0.0)
    start = k.width
    assert start == (final if kind == "linear" else 6.0)
    k.set_progress(0.125)                       # halfway through the first quarter
    assert k.width == pytest.approx((start + final) / 2)
    k.set_progress(0.25)                        # the DCLS recipe: final width after 1/4
    assert k.width == final and not k.straight_through
    k.set_progress(0.49)
    assert k.width == final and not k.straight_through
    k.set_progress(0.5)
    assert k.width == final and k.straight_through
    k.set_progress(1.0)
    assert k.width == final


@pytest.mark.parametrize("kind", KINDS)
def test_straight_through_phase_forwards_rounded_delays_and_backprops_the_kernel(kind):
    k = DelayKernel(kind, 6)
    k.set_progress(1.0)
    bins = torch.arange(0, 7)
    p = torch.tensor([1.4, 2.5, 4.6], dtype=torch.float64, requires_grad=True)
    out = k(p, bins)
    assert torch.equal(out.detach(), torch.nn.functional.one_hot(torch.tensor([1, 3, 5]), 7).double())
    g_ste, = torch.autograd.grad((out * torch.arange(7.0)).sum(), p)
    q = p.detach().clone().requires_grad_()
    g_soft, = torch.autograd.grad((spread(q, bins, k.mode, k.width) * torch.arange(7.0)).sum(), q)
    assert torch.allclose(g_ste, g_soft) and g_ste.abs().sum() > 0


def test_round_half_up_never_truncates():
    x = torch.tensor([0.5, 1.49, 1.5, 2.5, 2.7, 3.0, 6.99])
    assert round_half_up(x).tolist() == [1.0, 1.0, 2.0, 3.0, 3.0, 3.0, 7.0]


# ----------------------------------------------------------------------------- DelayedLinear


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("d_min", [0, 1])
def test_delayed_linear_matches_loop_reference(kind, d_min):
    lin = make_linear(kind, n_in=3, n_out=4, d_max=5, d_min=d_min)
    x = torch.rand(2, 9, 3, dtype=torch.float64)
    got = lin(x).detach().numpy()
    want = delayed_reference(x.numpy(), lin.weight.detach().numpy(), lin.delay.detach().numpy(),
                             lin.bias.detach().numpy(), np.arange(d_min, 6), kind,
                             lin.kernel.width)
    np.testing.assert_allclose(got, want, atol=1e-12)


@pytest.mark.parametrize("kind", KINDS)
def test_delayed_linear_gradcheck_inputs_weights_delays_bias(kind):
    lin = make_linear(kind, n_in=3, n_out=2, d_max=4)
    kernel, bins = lin.kernel, lin.bins
    x = torch.rand(2, 7, 3, dtype=torch.float64, requires_grad=True)

    def f(x, w, d, b):
        from delayhw.train.layers import delay_conv
        return delay_conv(x, w.unsqueeze(-1) * kernel(d, bins), 4) + b

    args = (x, lin.weight.detach().clone().requires_grad_(),
            lin.delay.detach().clone().requires_grad_(), lin.bias.detach().clone().requires_grad_())
    assert torch.autograd.gradcheck(f, args)
    # and the module's own autograd agrees with that function's
    y = lin(x)
    y.square().sum().backward()
    assert lin.delay.grad is not None and lin.delay.grad.abs().sum() > 0


def test_clamp_and_round_delays():
    lin = make_linear("gaussian", d_max=5, d_min=1)
    with torch.no_grad():
        lin.delay.copy_(torch.tensor([[-3.0, 0.7, 2.5], [2.49, 4.6, 9.0]]))
    lin.clamp_()
    assert lin.delay.min() >= 1 and lin.delay.max() <= 5
    with torch.no_grad():
        lin.delay.copy_(torch.tensor([[1.2, 1.5, 2.5], [2.49, 4.6, 4.51]]))
    lin.round_delays_()
    assert lin.delay.tolist() == [[1.0, 2.0, 3.0], [2.0, 5.0, 5.0]]
    assert not lin.delay.requires_grad and lin.delay_parameters() == []


# ----------------------------------------------------------------------------- LIF, readout


def lif_reference(layer: LIFLayer, x: np.ndarray, spike=lambda v: (v >= 0).astype(float)):
    """Per-sample loops over the docstring dynamics of LIFLayer (threshold 1)."""
    ff = delayed_reference(x, layer.ff.weight.detach().double().numpy(),
                           layer.ff.delay.detach().double().numpy(),
                           None if layer.ff.bias is None else layer.ff.bias.detach().double().numpy(),
                           np.arange(0, layer.ff.d_max + 1), layer.ff.kernel.mode,
                           layer.ff.kernel.width)
    batch, steps, n = ff.shape
    out = np.zeros((batch, steps, n))
    taps = None if layer.rec is None else layer.rec.taps().detach().double().numpy()
    for b in range(batch):
        v = np.zeros(n)
        for t in range(steps):
            i_t = ff[b, t].copy()
            if taps is not None:
                for m, delay in enumerate(range(1, layer.rec.d_max + 1)):
                    if t - delay >= 0:
                        i_t += taps[:, :, m] @ out[b, t - delay]
            v = layer.beta * v + i_t
            s = spike(v - 1.0)
            v = v - s if layer.reset == "subtract" else v * (1 - s)
            out[b, t] = s
    return out


@pytest.mark.parametrize("recurrent,reset", [(False, "subtract"), (True, "subtract"), (True, "zero")])
def test_lif_layer_matches_loop_reference(recurrent, reset):
    torch.manual_seed(1)
    kernel = DelayKernel("triangle", 4)
    kernel.set_progress(0.3)
    layer = LIFLayer(5, 3, 4, kernel, recurrent=recurrent, reset=reset, beta=0.7, bias=True).double()
    with torch.no_grad():
        layer.ff.bias.uniform_(-0.2, 0.4)
    x = (torch.rand(3, 15, 5) < 0.4).double()
    got = layer(x).detach().numpy()
    want = lif_reference(layer, x.numpy())
    assert got.sum() > 0  # the case exercises spikes
    np.testing.assert_array_equal(got, want)


def test_recurrent_lif_gradcheck_with_a_smooth_spike_function():
    """With a smooth stand-in for the spike function, the whole recurrent computation
    (delayed feedforward, delayed recurrence, reset) must have exact gradients with respect to
    inputs, feedforward and recurrent weights and delays."""
    torch.manual_seed(2)
    kernel = DelayKernel("gaussian", 3)
    kernel.set_progress(0.2)
    layer = LIFLayer(3, 2, 3, kernel, recurrent=True, beta=0.8, spike_fn=torch.sigmoid,
                     detach_reset=False).double()
    with torch.no_grad():
        layer.ff.delay.copy_(0.3 + torch.rand(2, 3, dtype=torch.float64) * 2.4)
        layer.rec.delay.copy_(1.3 + torch.rand(2, 2, dtype=torch.float64) * 1.4)
    params = [layer.ff.weight, layer.ff.delay, layer.rec.weight, layer.rec.delay]
    x = torch.rand(2, 6, 3, dtype=torch.float64, requires_grad=True)

    def f(x, *values):
        for p, v in zip(params, values):
            p.data = v
        return layer(x)

    values = [p.detach().clone().requires_grad_() for p in params]

    def g(x, w, d, wr, dr):
        # functional twin of f so gradcheck sees the leaves
        from delayhw.train.layers import delay_conv, history_window
        cur = delay_conv(x, w.unsqueeze(-1) * kernel(d, layer.ff.bins), 3)
        w_rec = (wr.unsqueeze(-1) * kernel(dr, layer.rec.bins)).reshape(2, -1)
        v, out, zero = torch.zeros(2, 2, dtype=x.dtype), [], torch.zeros(2, 2, dtype=x.dtype)
        for t in range(6):
            i_t = cur[:, t] + history_window(out, t, 1, 3, zero) @ w_rec.T
            v = 0.8 * v + i_t
            s = torch.sigmoid(v - 1.0)
            v = v - s
            out.append(s)
        return torch.stack(out, 1)

    assert torch.allclose(g(x, *values), f(x, *values))
    assert torch.autograd.gradcheck(g, (x, *values))


def test_atan_surrogate_forward_and_backward():
    x = torch.tensor([-1.0, -0.1, 0.0, 0.3, 2.0], dtype=torch.float64, requires_grad=True)
    s = atan_spike(x, alpha=2.0)
    assert s.tolist() == [0.0, 0.0, 1.0, 1.0, 1.0]
    g, = torch.autograd.grad(s.sum(), x)
    want = [1.0 / (1 + (math.pi * v) ** 2) for v in x.tolist()]   # alpha/2 / (1 + (pi/2 alpha x)^2)
    assert g.tolist() == pytest.approx(want)


def test_readout_is_a_leaky_integrator():
    torch.manual_seed(3)
    kernel = DelayKernel("linear", 2)
    r = Readout(3, 2, 2, kernel, beta=0.5).double()
    x = torch.rand(1, 5, 3, dtype=torch.float64)
    cur = r.ff(x)[0].detach().numpy()
    v, want = np.zeros(2), []
    for t in range(5):
        v = 0.5 * v + cur[t]
        want.append(v.copy())
    np.testing.assert_allclose(r(x)[0].detach().numpy(), np.array(want))


def test_samples_in_a_batch_are_independent_and_gradients_reach_inputs():
    net = DelayNet(NetConfig(4, 3, hidden=(6,), d_max=5, recurrent=True, seed=4))
    x = (torch.rand(3, 12, 4) < 0.5).float().requires_grad_()
    logits, spikes = net(x)
    for b in range(3):
        alone, s_alone = net(x[b:b + 1])
        assert torch.allclose(alone, logits[b:b + 1])
        assert torch.equal(s_alone[0], spikes[0][b:b + 1])
    logits.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(p.grad is not None for p in net.delay_parameters())


def test_weight_and_delay_parameter_groups_are_disjoint_and_complete():
    net = DelayNet(NetConfig(4, 3, hidden=(6, 5), d_max=5, recurrent=True, bias=True))
    delays = {id(p) for p in net.delay_parameters()}
    weights = {id(p) for p in net.weight_parameters()}
    assert len(delays) == 3 + 2 and not delays & weights     # 3 ff + 2 recurrent
    assert delays | weights == {id(p) for p in net.parameters()}
    frozen = DelayNet(NetConfig(4, 3, hidden=(6,), d_max=5, learn_delays=False))
    assert frozen.delay_parameters() == [] and frozen.kernel.hard
    assert all(float(l.ff.delay.abs().max()) == 0 for l in frozen.layers)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device here")
def test_cuda_matches_cpu():
    net = DelayNet(NetConfig(4, 3, hidden=(6,), d_max=5, recurrent=True, seed=5))
    x = (torch.rand(3, 12, 4) < 0.5).float()
    want = net(x)[0]
    got = net.to("cuda")(x.to("cuda"))[0].cpu()
    assert torch.allclose(got, want, atol=1e-5)
