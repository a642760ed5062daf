"""NIR export/import of the float network: round trip through a file, orientation of
non-square non-symmetric matrices, and the graph's meaning checked by a small interpreter of
NIR's nodes written here from the NIR definitions (Euler steps of length dt)."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
nir = pytest.importorskip("nir")

from delayhw import DelayhwError  # noqa: E402
from delayhw.train.layers import DelayNet, NetConfig  # noqa: E402
from delayhw.train.nir_io import from_nir, read_nir, to_nir, write_nir  # noqa: E402


def trained_like(recurrent=True, bias=True, reset="subtract", seed=0):
    """5 inputs -> 3 lif -> 2 readout: every matrix non-square; delays spread over 0..6."""
    net = DelayNet(NetConfig(5, 2, hidden=(3,), d_max=6, recurrent=recurrent, bias=bias,
                             reset=reset, beta=0.7, beta_out=0.9, seed=seed))
    with torch.no_grad():
        for layer in net.layers:
            if layer.ff.bias is not None:
                layer.ff.bias.uniform_(-0.3, 0.3)
    net.round_delays_()
    return net


def interpret(graph, x: np.ndarray, dt: float) -> dict[str, np.ndarray]:
    """Run a chain-shaped NIR graph on x (T, n_in), written from NIR's definitions:
    Linear/Affine y = W x (+ b); Delay y(t) = x(t - delay); LIF/LI Euler steps of length dt,
    v += dt/tau (v_leak - v) + dt/tau r I; LIF fires at v >= v_threshold (delayhw's H(0) = 1)
    and resets to v_reset (or subtracts the threshold when the node's metadata says
    "subtract", the one thing NIR cannot say). Returns every neuron node's output (T, N)."""
    nodes, steps = graph.nodes, x.shape[0]
    into = {}
    for a, b in graph.edges:
        into.setdefault(b, []).append(a)
    neurons = sorted((n for n in nodes if isinstance(nodes[n], (nir.LIF, nir.LI))),
                     key=lambda n: (isinstance(nodes[n], nir.LI), n))
    outputs = {n: np.zeros((steps, nodes[n].tau.size)) for n in neurons}

    def signal(name, t):                       # output of an Input or neuron node at time t
        if t < 0:
            return 0.0
        return x[t] if isinstance(nodes[name], nir.Input) else outputs[name][t]

    def branch(name, t):                       # value at time t of a node feeding a neuron
        node = nodes[name]
        if isinstance(node, nir.Delay):
            k = node.delay / dt
            assert np.all(k == k[0]) and k[0] == round(k[0])
            return branch(into[name][0], t - int(round(k[0]))) if t - k[0] >= 0 else 0.0
        y = node.weight @ signal(into[name][0], t)
        return y + node.bias if isinstance(node, nir.Affine) else y

    state = {n: np.zeros(nodes[n].tau.size) for n in neurons}
    for t in range(steps):
        for n in neurons:
            node = nodes[n]
            current = sum(branch(a, t) for a in into[n])
            v = state[n] + dt / node.tau * (node.v_leak - state[n]) + dt / node.tau * node.r * current
            if isinstance(node, nir.LIF):
                s = (v >= node.v_threshold).astype(float)
                subtract = node.metadata.get("reset") in ("subtract", b"subtract")
                v = np.where(s > 0, v - node.v_threshold if subtract else node.v_reset, v)
                outputs[n][t] = s
            else:
                outputs[n][t] = v
            state[n] = v
    return outputs


@pytest.mark.parametrize("recurrent,reset", [(False, "subtract"), (True, "subtract"), (True, "zero")])
def test_round_trip_through_a_file_is_exact(tmp_path, recurrent, reset):
    net = trained_like(recurrent=recurrent, reset=reset)
    path = write_nir(net, tmp_path / "net.nir")
    back = read_nir(path)
    for (name, a), (name2, b) in zip(net.state_dict().items(), back.state_dict().items()):
        assert name == name2 and torch.equal(a, b), name
    x = (torch.rand(4, 25, 5) < 0.4).float()
    logits, spikes = net(x)
    logits2, spikes2 = back(x)
    assert torch.equal(logits, logits2) and torch.equal(spikes[0], spikes2[0])
    assert spikes[0].sum() > 0


def test_branches_keep_the_out_by_in_orientation():
    net = trained_like()
    graph = to_nir(net)
    w = net.layers[0].ff.weight.detach().double().numpy()              # (3, 5)
    d = net.layers[0].ff.int_delays().numpy()
    assert w.shape == (3, 5) and not np.allclose(w[:3, :3], w[:3, :3].T)
    used = np.unique(d)
    assert len(used) >= 3
    for m in used:
        node = graph.nodes[f"hidden0.ff.d{m}"]
        np.testing.assert_array_equal(node.weight, np.where(d == m, w, 0.0))
        if m > 0:
            delay = graph.nodes[f"hidden0.ff.delay{m}"].delay
            assert delay.shape == (3,) and np.all(delay == m)
    w_out = net.layers[1].ff.weight.detach().double().numpy()          # (2, 3)
    total = sum(node.weight for n, node in graph.nodes.items()
                if n.startswith("out.ff.") and isinstance(node, (nir.Linear, nir.Affine)))
    np.testing.assert_array_equal(total, w_out)
    assert ("hidden0", "hidden0.rec.d%d" % net.layers[0].rec.int_delays()[0, 0]) in graph.edges


@pytest.mark.parametrize("dt", [1.0, 1e-3])
def test_graph_means_the_same_network(dt):
    """An interpreter of NIR's equations on the exported graph reproduces the network."""
    net = trained_like(recurrent=True)
    graph = to_nir(net, dt=dt)
    x = (np.random.default_rng(1).random((30, 5)) < 0.4).astype(float)
    out = interpret(graph, x, dt)
    logits, spikes = net(torch.from_numpy(x).float()[None])
    assert spikes[0].sum() > 0
    np.testing.assert_array_equal(out["hidden0"], spikes[0][0].detach().numpy())
    np.testing.assert_allclose(out["out"].mean(axis=0), logits[0].detach().numpy(), rtol=1e-5,
                               atol=1e-5)


def test_import_rejects_two_delays_for_one_synapse():
    net = trained_like(recurrent=False)
    graph = to_nir(net)
    d = net.layers[0].ff.int_delays().numpy()
    m = [int(v) for v in np.unique(d) if v > 0][0]
    # make the delay-m branch also carry a synapse that the delay-0 branch carries
    w0 = graph.nodes["hidden0.ff.d0"].weight
    j, i = np.argwhere(w0 != 0)[0] if (w0 != 0).any() else np.argwhere(d != m)[0]
    graph.nodes[f"hidden0.ff.d{m}"].weight[j, i] = 0.5
    graph.nodes["hidden0.ff.d0"].weight[j, i] = 0.5
    with pytest.raises(DelayhwError, match=f"synapse \\({j}, {i}\\)"):
        from_nir(graph)


def test_import_rejects_a_recurrent_delay_of_zero():
    graph = to_nir(trained_like(recurrent=True))
    graph.nodes["hidden0.rec.d0"] = nir.Linear(weight=np.full((3, 3), 0.1))
    graph.edges += [("hidden0", "hidden0.rec.d0"), ("hidden0.rec.d0", "hidden0")]
    with pytest.raises(DelayhwError, match="hidden0.rec.d0: .*delay 0"):
        from_nir(graph)


def test_import_of_a_foreign_graph_with_per_channel_delays():
    """A graph not written by delayhw: Linear -> Delay (different delay per output channel)
    -> LIF with tau/r/threshold of its own; weights come back scaled by dt*r/tau/threshold."""
    w1 = np.arange(6, dtype=float).reshape(3, 2) / 10 + 0.1
    w2 = np.array([[0.5, -0.5, 0.25]])
    nodes = {
        "in": nir.Input(input_type={"input": np.array([2])}),
        "lin1": nir.Linear(weight=w1),
        "del1": nir.Delay(delay=np.array([0.002, 0.0, 0.004])),
        "lif": nir.LIF(tau=np.full(3, 0.01), r=np.full(3, 2.0), v_leak=np.zeros(3),
                       v_threshold=np.full(3, 0.5), v_reset=np.zeros(3)),
        "lin2": nir.Linear(weight=w2),
        "li": nir.LI(tau=np.full(1, 0.02), r=np.ones(1), v_leak=np.zeros(1)),
        "out": nir.Output(output_type={"output": np.array([1])}),
    }
    edges = [("in", "lin1"), ("lin1", "del1"), ("del1", "lif"), ("lif", "lin2"),
             ("lin2", "li"), ("li", "out")]
    graph = nir.NIRGraph(nodes=nodes, edges=edges, metadata={"dt": 0.001})
    net = from_nir(graph)
    hid, ro = net.layers
    assert hid.ff.int_delays().tolist() == [[2, 2], [0, 0], [4, 4]]
    assert hid.beta == pytest.approx(0.9) and ro.beta == pytest.approx(0.95)
    np.testing.assert_allclose(hid.ff.weight.detach().numpy(), w1 * (0.1 * 2.0 / 0.5), rtol=1e-6)
    np.testing.assert_allclose(ro.ff.weight.detach().numpy(), w2 * 0.05, rtol=1e-6)
    assert hid.reset == "zero"


def test_read_nir_errors(tmp_path):
    with pytest.raises(DelayhwError, match="no such file"):
        read_nir(tmp_path / "none.nir")
    (tmp_path / "bad.nir").write_text("not hdf5")
    with pytest.raises(DelayhwError, match="bad.nir: not a readable NIR file"):
        read_nir(tmp_path / "bad.nir")
