"""Quantisation: the QAT integer forward equals delayhw.golden on the exported model, bit for
bit (spikes and scores); scales, widths, rounding and export rules."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from delayhw import DelayhwError, golden  # noqa: E402
from delayhw.formats import load_model, save_model  # noqa: E402
from delayhw.spec import Model  # noqa: E402
from delayhw.train.layers import DelayNet, NetConfig  # noqa: E402
from delayhw.train.quant import choose_quant, export_model, int_forward  # noqa: E402


def random_net(seed: int) -> tuple[DelayNet, dict]:
    """A random float network with rounded delays and random widths; returns it and the
    widths to quantise it with."""
    rng = np.random.default_rng(seed)
    hidden = tuple(int(h) for h in rng.integers(1, 7, size=rng.integers(0, 3)))
    cfg = NetConfig(n_inputs=int(rng.integers(1, 7)), n_classes=int(rng.integers(1, 5)),
                    hidden=hidden, d_max=int(rng.integers(1, 7)), recurrent=bool(rng.random() < 0.6),
                    kernel=str(rng.choice(["linear", "triangle", "gaussian"])),
                    beta=float(rng.choice([0.0, 1.0, rng.uniform(0, 1)])),
                    beta_out=float(rng.choice([1.0, rng.uniform(0, 1)])),
                    reset=str(rng.choice(["subtract", "zero"])), bias=bool(rng.random() < 0.5),
                    seed=seed)
    net = DelayNet(cfg).double()
    with torch.no_grad():
        for p in net.parameters():
            if p.dim() == 1:                   # biases
                p.uniform_(-0.5, 0.5)
    net.set_progress(float(rng.random()))
    net.clamp_delays_()
    net.round_delays_()
    widths = dict(w_bits=int(rng.integers(2, 10)), f_bits=int(rng.integers(1, 10)),
                  v_bits=None if rng.random() < 0.5 else int(rng.integers(4, 12)))
    return net, widths


def compare_with_golden(net, spec, x):
    model = export_model(net, spec)
    out = int_forward(net, torch.from_numpy(x), spec)
    ref = golden.run(model, x)
    np.testing.assert_array_equal(out.scores.detach().numpy().astype(np.int64), ref.scores)
    assert len(out.spikes) == len(ref.spikes)
    for got, want in zip(out.spikes, ref.spikes):
        np.testing.assert_array_equal(got.detach().numpy().astype(np.uint8), want)
    return model, ref


@pytest.mark.parametrize("seed", range(40))
def test_qat_forward_equals_golden_bit_for_bit(seed):
    net, widths = random_net(seed)
    spec = choose_quant(net, **widths)
    rng = np.random.default_rng(1000 + seed)
    x = (rng.random((4, int(rng.integers(1, 25)), net.config.n_inputs)) < rng.uniform(0.1, 0.7)).astype(np.uint8)
    compare_with_golden(net, spec, x)


@pytest.mark.parametrize("recurrent", [False, True])
def test_qat_forward_equals_golden_when_membranes_clamp(recurrent):
    """Narrow membranes with strong weights: the clamp of section 3 must happen (checked by
    comparing with a wide-membrane export) and still agree bit for bit."""
    net = DelayNet(NetConfig(6, 3, hidden=(5,), d_max=4, recurrent=recurrent, beta=0.95,
                             beta_out=1.0, seed=7)).double()
    with torch.no_grad():
        for layer in net.layers:
            layer.ff.weight.mul_(4).abs_()
    net.round_delays_()
    x = (np.random.default_rng(3).random((5, 30, 6)) < 0.6).astype(np.uint8)
    narrow = choose_quant(net, w_bits=6, f_bits=4, v_bits=7)
    model, ref = compare_with_golden(net, narrow, x)
    wide = golden.run(export_model(net, choose_quant(net, w_bits=6, f_bits=4, v_bits=24)), x)
    assert not np.array_equal(wide.scores, ref.scores)


def test_qat_gradients_reach_weights_not_delays():
    net = DelayNet(NetConfig(4, 3, hidden=(6,), d_max=4, recurrent=True, bias=True, seed=1))
    net.round_delays_()
    spec = choose_quant(net)
    x = (torch.rand(4, 20, 4) < 0.5).float()
    out = int_forward(net, x, spec)
    torch.nn.functional.cross_entropy(out.logits.float(), torch.tensor([0, 1, 2, 0])).backward()
    for layer in net.layers:
        assert layer.ff.weight.grad is not None and layer.ff.weight.grad.abs().sum() > 0
        assert layer.ff.delay.grad is None
    assert net.layers[0].rec.weight.grad is not None


def test_scales_thresholds_and_widths():
    net = DelayNet(NetConfig(5, 3, hidden=(4,), d_max=3, recurrent=True, beta=0.9, beta_out=0.75))
    with torch.no_grad():
        net.layers[0].ff.weight.copy_(torch.linspace(-0.6, 0.9, 20).reshape(4, 5))
        net.layers[0].rec.weight.copy_(torch.linspace(-1.3, 0.2, 16).reshape(4, 4))
        net.layers[1].ff.weight.copy_(torch.linspace(-0.2, 0.4, 12).reshape(3, 4))
    spec = choose_quant(net, w_bits=6, f_bits=5)
    hid, out = spec.layers
    assert hid.threshold == int(31 // 1.3) and hid.scale == hid.threshold      # largest |w| is 1.3
    assert out.threshold is None and out.scale == pytest.approx(31 / 0.4)
    assert hid.beta == int(np.floor(0.9 * 32 + 0.5)) and out.beta == 24        # half up
    model = export_model(net, spec)
    assert np.abs(model.layers[0].w_rec).max() == round(1.3 * hid.threshold)
    assert np.abs(model.layers[1].w).max() == 31
    for layer, q in zip(model.layers, spec.layers):
        assert layer.v_bits == q.v_bits and 4 <= q.v_bits <= 24
        if layer.threshold is not None:
            assert layer.threshold <= (1 << (layer.v_bits - 1)) - 1
    assert model.train["scales"] == [hid.scale, out.scale]


@pytest.mark.parametrize("widths", [dict(w_bits=1), dict(w_bits=17), dict(f_bits=0),
                                    dict(v_bits=3), dict(v_bits=33), dict(w_bits=8.0)])
def test_bad_widths_raise_delayhw_error(widths):
    net = DelayNet(NetConfig(2, 2, hidden=(2,), d_max=1))
    with pytest.raises(DelayhwError, match=next(iter(widths))):
        choose_quant(net, **widths)


def test_export_rounds_delays_never_truncates_and_validates(tmp_path):
    net = DelayNet(NetConfig(3, 2, hidden=(2,), d_max=6, recurrent=True))
    with torch.no_grad():
        net.layers[0].ff.delay.copy_(torch.tensor([[2.5, 2.49, 0.6], [5.7, 0.2, 3.5]]))
        net.layers[0].rec.delay.copy_(torch.tensor([[1.0, 1.6], [2.5, 4.4]]))
        net.layers[0].ff.weight.copy_(torch.tensor([[0.5, 0.5, 0.5], [0.5, 0.0, 0.5]]))
        net.layers[1].ff.delay.copy_(torch.tensor([[0.4, 1.5], [2.6, 0.0]]))
    spec = choose_quant(net)
    model = export_model(net, spec, {"note": "test"})
    hid, out = model.layers
    assert hid.d.tolist() == [[3, 2, 1], [6, 0, 4]]          # the zero-weight synapse gets 0
    assert hid.d_rec.tolist() == [[1, 2], [3, 4]]
    assert out.d.tolist() == [[0, 2], [3, 0]]
    assert hid.d_max == 6 and out.d_max == 3
    assert isinstance(model, Model) and model.train["note"] == "test"
    save_model(model, tmp_path / "m.npz")
    back = load_model(tmp_path / "m.npz")
    assert back.train["scales"] == model.train["scales"]
    assert np.array_equal(back.layers[0].w, hid.w)
