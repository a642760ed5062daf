"""The trainer's fast path (delay_matmul, lif_scan, leaky_trace, straight-through kernel)
against its reference path (delay_conv on full taps, per-step autograd loops): forward values
and gradients to inputs, weights, delays and bias, in float64 with tight tolerances."""

import pytest

torch = pytest.importorskip("torch")

from delayhw.train import layers  # noqa: E402
from delayhw.train.kernels import DelayKernel  # noqa: E402
from delayhw.train.layers import (DelayedLinear, DelayNet, LIFLayer, NetConfig,  # noqa: E402
                                  Readout, delay_conv, delay_matmul, leaky_trace, lif_scan,
                                  reference_path)

KINDS = ["linear", "triangle", "gaussian"]
TOL = dict(rtol=1e-11, atol=1e-12)


def close(a, b):
    torch.testing.assert_close(a, b, **TOL)


# (n_in, n_out, x needs a gradient): covers the unfolded input, the unfolded output (n_out at
# most n_in / 2) and the delay_conv fallback
SHAPES = [(5, 4, False), (6, 3, True), (3, 4, True), (8, 2, True)]


@pytest.mark.parametrize("n_in,n_out,x_grad", SHAPES)
@pytest.mark.parametrize("d_min", [0, 1])
def test_delay_matmul_equals_delay_conv_with_gradients(n_in, n_out, x_grad, d_min):
    gen = torch.Generator().manual_seed(n_in * 10 + n_out + d_min)
    d_max = 6
    x = (torch.rand(3, 11, n_in, generator=gen, dtype=torch.float64) < 0.4).double()
    x = (x * torch.rand(x.shape, generator=gen, dtype=torch.float64)).requires_grad_(x_grad)
    taps = torch.randn(n_out, n_in, d_max - d_min + 1, generator=gen, dtype=torch.float64,
                       requires_grad=True)
    want = delay_conv(x, taps, d_max)
    got = delay_matmul(x, taps, d_min)
    close(got, want)
    g = torch.randn(want.shape, generator=gen, dtype=torch.float64)
    leaves = (x, taps) if x_grad else (taps,)
    for a, b in zip(torch.autograd.grad(got, leaves, g), torch.autograd.grad(want, leaves, g)):
        close(a, b)


def test_delay_matmul_short_sequences_and_single_bin():
    """Fewer steps than the delay range, and d_min == d_max (one bin)."""
    gen = torch.Generator().manual_seed(7)
    for steps, d_min, d_max in [(2, 0, 6), (1, 1, 4), (5, 3, 3), (4, 0, 0)]:
        for n_in, n_out, x_grad in SHAPES:
            x = torch.rand(2, steps, n_in, generator=gen, dtype=torch.float64,
                           requires_grad=x_grad)
            taps = torch.randn(n_out, n_in, d_max - d_min + 1, generator=gen,
                               dtype=torch.float64, requires_grad=True)
            want, got = delay_conv(x, taps, d_max), delay_matmul(x, taps, d_min)
            close(got, want)
            leaves = (x, taps) if x_grad else (taps,)
            g = torch.randn(want.shape, generator=gen, dtype=torch.float64)
            for a, b in zip(torch.autograd.grad(got, leaves, g),
                            torch.autograd.grad(want, leaves, g)):
                close(a, b)


def delayed_pair(kind, n_in, n_out, d_min, progress, seed):
    kernel = DelayKernel(kind, 6)
    kernel.set_progress(progress)
    torch.manual_seed(seed)
    lin = DelayedLinear(n_in, n_out, 6, kernel, d_min=d_min, bias=True).double()
    with torch.no_grad():
        d = d_min + torch.rand(n_out, n_in, dtype=torch.float64) * (6 - d_min)
        d.view(-1)[0], d.view(-1)[-1] = d_min, 6          # both ends of the range
        d.view(-1)[1] = d_min + 2.5                        # a half: rounds up
        lin.delay.copy_(d)
        lin.bias.uniform_(-1, 1)
    return lin


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("progress", [0.0, 0.2, 1.0])     # wide, narrowing, straight-through
@pytest.mark.parametrize("n_in,n_out,x_grad", SHAPES)
def test_delayed_linear_fast_path_equals_reference_with_gradients(kind, progress, n_in, n_out,
                                                                   x_grad):
    for d_min in (0, 1):
        lin = delayed_pair(kind, n_in, n_out, d_min, progress, seed=n_in + n_out)
        x = (torch.rand(2, 13, n_in, dtype=torch.float64) < 0.5).double().requires_grad_(x_grad)
        leaves = [lin.weight, lin.delay, lin.bias] + ([x] if x_grad else [])
        results = []
        for ref in (True, False):
            with reference_path(ref):
                y = lin(x)
            results.append((y, torch.autograd.grad((y * y.detach().sin()).sum(), leaves)))
        (want, want_g), (got, got_g) = results
        close(got, want)
        assert want_g[1].abs().sum() > 0                   # delays get a gradient
        for a, b in zip(got_g, want_g):
            close(a, b)


def lif_loop(current, beta, reset):
    """The reference per-step loop of LIFLayer (atan_spike, detached reset)."""
    layer = LIFLayer(1, current.shape[2], 2, DelayKernel("linear", 2), beta=beta, reset=reset)
    layer.ff = torch.nn.Identity()
    with reference_path():
        return layer(current)


@pytest.mark.parametrize("steps", [30, 150])                # one / three decay_scan blocks
@pytest.mark.parametrize("torch_loop", [False, True])      # CPU numpy loop / the torch one
@pytest.mark.parametrize("reset", ["subtract", "zero"])
def test_lif_scan_equals_the_reference_loop_with_gradients(reset, torch_loop, steps,
                                                            monkeypatch):
    monkeypatch.setattr(layers, "_TORCH_LIF_LOOP", torch_loop)
    gen = torch.Generator().manual_seed(3)
    current = (torch.rand(4, steps, 5, generator=gen, dtype=torch.float64) * 1.6 - 0.3)
    current.requires_grad_()
    want = lif_loop(current, 0.8, reset)
    got = lif_scan(current, 0.8, reset)
    assert 0 < want.sum() < want.numel() / 2
    torch.testing.assert_close(got, want, rtol=0, atol=0)
    g = torch.randn(want.shape, generator=gen, dtype=torch.float64)
    a, = torch.autograd.grad(got, current, g)
    b, = torch.autograd.grad(want, current, g)
    close(a, b)


@pytest.mark.parametrize("steps", [17, 64, 150])           # one block, exactly one, three
def test_leaky_trace_equals_the_readout_loop_with_gradients(steps):
    gen = torch.Generator().manual_seed(4)
    readout = Readout(1, 3, 2, DelayKernel("linear", 2), beta=0.9)
    readout.ff = torch.nn.Identity()
    current = torch.randn(2, steps, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    with reference_path():
        want = readout(current)
    got = leaky_trace(current, 0.9)
    close(got, want)
    g = torch.randn(want.shape, generator=gen, dtype=torch.float64)
    for a, b in zip(torch.autograd.grad(got, current, g), torch.autograd.grad(want, current, g)):
        close(a, b)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("reset", ["subtract", "zero"])
def test_delay_net_fast_path_equals_reference(kind, reset):
    """Whole network, two hidden layers: logits, spikes and every parameter's gradient."""
    net = DelayNet(NetConfig(6, 3, hidden=(8, 4), d_max=5, kernel=kind, reset=reset,
                             bias=True, seed=2)).double()
    net.set_progress(0.1)
    x = (torch.rand(3, 20, 6, dtype=torch.float64) < 0.3).double()
    runs = []
    for ref in (True, False):
        net.zero_grad()
        with reference_path(ref):
            logits, spikes = net(x)
        (logits.square().sum() + sum(s.sum() for s in spikes)).backward()
        runs.append((logits.detach(), spikes, [p.grad.clone() for p in net.parameters()]))
    (want, want_s, want_g), (got, got_s, got_g) = runs
    close(got, want)
    assert sum(float(s.detach().sum()) for s in want_s) > 0
    for a, b in zip(got_s, want_s):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    for a, b in zip(got_g, want_g):
        close(a, b)


def test_reference_path_is_restored_after_the_block():
    from delayhw.train import layers
    with reference_path():
        assert layers._REFERENCE
        with reference_path(False):
            assert not layers._REFERENCE
        assert layers._REFERENCE
    assert not layers._REFERENCE


@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("beta", [0.0, 0.5, 0.95])
def test_decay_scan_equals_its_recurrence(beta, reverse):
    """y[t] = x[t] + beta * y[t - 1] (reverse: y[t + 1]), the plain loop, over 3 blocks."""
    x = torch.randn(3, 2 * layers.DECAY_BLOCK + 7, 4, dtype=torch.float64,
                    generator=torch.Generator().manual_seed(5))
    order = range(x.shape[1] - 1, -1, -1) if reverse else range(x.shape[1])
    want, carry = torch.empty_like(x), torch.zeros_like(x[:, 0])
    for t in order:
        carry = want[:, t] = x[:, t] + beta * carry
    close(layers.decay_scan(x, beta, reverse), want)
