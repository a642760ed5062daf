"""NIR export and import of the float network (delays must be integers, i.e. rounded).

NIR's ``Delay`` node delays each *channel* by one time; a delayhw layer has one delay per
*synapse*. Since a delay commutes with a linear map when every term of a sum has the same
delay, a layer's input current

    I[t, j] = sum_i W[j, i] * x[t - D[j, i], i] = sum_m (W * [D == m]) x [t - m]

is written as one branch per distinct delay value ``m``: ``Affine/Linear(W * [D == m])`` ->
``Delay(m * dt)`` -> neuron. Graph for layer ``L`` (``m`` over the delays in use):

    src ──► L.ff.d0 (Affine: W*[D==0], bias) ───────────────────────────► L
    src ──► L.ff.d{m} (Linear: W*[D==m]) ──► L.ff.delay{m} (Delay m*dt) ─► L      (m >= 1)
    L   ──► L.rec.d{m} (Linear: W_rec*[D_rec==m]) ──► L.rec.delay{m} ────► L      (m >= 1)

``src`` is ``input`` or the previous layer. Weights keep the delayhw/NIR orientation
``(n_out, n_in)``; nothing is transposed. A branch count is at most ``d_max + 1`` per
connection. Neurons: ``LIF`` for hidden layers, ``LI`` for the readout, with the Euler
convention ``tau = dt / (1 - beta)``, ``r = tau / dt`` (so ``v[t] = beta v[t-1] + I[t]``),
``v_leak = 0``, ``v_threshold = 1``, ``v_reset = 0``; the exact ``beta`` and the reset mode
(``subtract`` has no NIR field) are in the node's ``metadata``. Graph metadata holds
``format = "delayhw-delaynet"``, ``dt`` and the network config. The readout's score is
``sum_t v`` (not a NIR notion). :func:`from_nir` also accepts other graphs built from
``Affine/Linear [-> Delay] -> LIF/LI`` (and ``Delay -> Affine/Linear``, per-input delays).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from delayhw.errors import DelayhwError

from .layers import DelayNet, NetConfig

__all__ = ["to_nir", "from_nir", "write_nir", "read_nir", "GRAPH_FORMAT"]

GRAPH_FORMAT = "delayhw-delaynet"


def _layer_names(net: DelayNet) -> list[str]:
    return [f"hidden{k}" for k in range(len(net.layers) - 1)] + ["out"]


def _neuron_node(layer, dt: float):
    import nir

    n, beta = layer.size, float(layer.beta)
    tau = np.full(n, dt / (1.0 - beta) if beta < 1.0 else np.inf)
    r = tau / dt
    meta = {"beta": beta}
    if layer.kind == "lif":
        meta["reset"] = layer.reset
        return nir.LIF(tau=tau, r=r, v_leak=np.zeros(n), v_threshold=np.ones(n),
                       v_reset=np.zeros(n), metadata=meta)
    return nir.LI(tau=tau, r=r, v_leak=np.zeros(n), metadata=meta)


def _branches(prefix: str, w: np.ndarray, d: np.ndarray, bias: np.ndarray | None,
              target: str, source: str, dt: float, nodes: dict, edges: list,
              with_zero: bool) -> None:
    import nir

    delays = sorted(set(int(x) for x in np.unique(d[w != 0])) | ({0} if with_zero else set()))
    for m in delays:
        wm = np.where(d == m, w, 0.0)
        name = f"{prefix}.d{m}"
        if m == 0:
            nodes[name] = nir.Affine(weight=wm, bias=np.zeros(w.shape[0]) if bias is None
                                     else bias.astype(np.float64))
            edges += [(source, name), (name, target)]
        else:
            nodes[name] = nir.Linear(weight=wm)
            nodes[f"{prefix}.delay{m}"] = nir.Delay(delay=np.full(w.shape[0], m * dt))
            edges += [(source, name), (name, f"{prefix}.delay{m}"), (f"{prefix}.delay{m}", target)]


def to_nir(net: DelayNet, dt: float = 1.0):
    """The float network as a ``nir.NIRGraph`` (see module docstring); delays are rounded
    half up to integers first if they are not already."""
    import nir

    nodes: dict[str, Any] = {"input": nir.Input(input_type={"input": np.array([net.config.n_inputs])})}
    edges: list[tuple[str, str]] = []
    source = "input"
    for name, layer in zip(_layer_names(net), net.layers):
        nodes[name] = _neuron_node(layer, dt)
        w = layer.ff.weight.detach().cpu().double().numpy()
        d = layer.ff.int_delays().cpu().numpy()
        bias = None if layer.ff.bias is None else layer.ff.bias.detach().cpu().double().numpy()
        _branches(f"{name}.ff", w, d, bias, name, source, dt, nodes, edges, with_zero=True)
        if layer.rec is not None:
            _branches(f"{name}.rec", layer.rec.weight.detach().cpu().double().numpy(),
                      layer.rec.int_delays().cpu().numpy(), None, name, name, dt, nodes, edges,
                      with_zero=False)
        source = name
    nodes["output"] = nir.Output(output_type={"output": np.array([net.config.n_classes])})
    edges.append((source, "output"))
    config = net.config.as_dict()
    meta = {"format": GRAPH_FORMAT, "dt": dt, "config": json.dumps(config),
            "readout": "score[j] = sum_t v[j](t)"}
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=meta)


def write_nir(net: DelayNet, path: str | Path, dt: float = 1.0) -> Path:
    import nir

    path = Path(path)
    nir.write(path, to_nir(net, dt))
    return path


def read_nir(path: str | Path) -> DelayNet:
    """Read a NIR file written by :func:`write_nir` (or of the same shape) into a
    :class:`DelayNet` with integer (hard) delays."""
    import nir

    from delayhw.formats import check_regular
    from delayhw.publish import show_path

    check_regular(path, show_path(path), "a NIR file")
    path = Path(path)
    try:
        graph = nir.read(path)
    except Exception as exc:  # nir/h5py raise many types for a bad file
        raise DelayhwError(f"{path}: not a readable NIR file ({type(exc).__name__}: {exc})") from None
    return from_nir(graph, str(path))


# ----------------------------------------------------------------------------- import


def _text(x: Any) -> Any:
    if isinstance(x, bytes):
        return x.decode("utf-8")
    if isinstance(x, np.ndarray) and x.shape == ():
        return _text(x.item())
    return x


def _uniform(source: str, name: str, what: str, a: np.ndarray) -> float:
    a = np.asarray(a, dtype=np.float64).ravel()
    if a.size and not np.all(a == a[0]):
        raise DelayhwError(f"{source}: {name}.{what}: per-neuron values are not supported "
                           f"(delayhw layers share one value), got {np.unique(a)[:4]}...")
    return float(a[0]) if a.size else 0.0


def from_nir(graph, source: str = "NIR graph") -> DelayNet:
    """Rebuild a :class:`DelayNet` from a NIR graph (see module docstring)."""
    import nir

    nodes, edges = graph.nodes, list(graph.edges)
    meta = {k: _text(v) for k, v in (graph.metadata or {}).items()}
    dt = float(meta.get("dt", 1.0))
    into: dict[str, list[str]] = {}
    for a, b in edges:
        into.setdefault(b, []).append(a)
    inputs = [k for k, v in nodes.items() if isinstance(v, nir.Input)]
    if len(inputs) != 1:
        raise DelayhwError(f"{source}: graph: needs exactly one Input node, got {len(inputs)}")
    neurons = [k for k, v in nodes.items() if isinstance(v, (nir.LIF, nir.LI))]

    def branch(neuron: str, node: str) -> tuple[str, np.ndarray, np.ndarray, np.ndarray | None]:
        """(presynaptic node, W, D, bias) of one branch ending at ``neuron``."""
        delay_out = delay_in = None
        if isinstance(nodes[node], nir.Delay):
            delay_out, node = nodes[node].delay, _single(into, node, source)
        if not isinstance(nodes[node], (nir.Affine, nir.Linear)):
            raise DelayhwError(f"{source}: {node}: expected Affine or Linear feeding {neuron}, "
                               f"got {type(nodes[node]).__name__}")
        w = np.asarray(nodes[node].weight, dtype=np.float64)
        bias = np.asarray(nodes[node].bias, dtype=np.float64) if isinstance(
            nodes[node], nir.Affine) else None
        pre = _single(into, node, source)
        if isinstance(nodes[pre], nir.Delay):
            delay_in, pre = nodes[pre].delay, _single(into, pre, source)
        steps = np.zeros(w.shape)
        if delay_out is not None:
            steps = steps + np.asarray(delay_out, dtype=np.float64)[:, None] / dt
        if delay_in is not None:
            steps = steps + np.asarray(delay_in, dtype=np.float64)[None, :] / dt
        d = np.rint(steps)
        if np.any(np.abs(steps - d) > 1e-6) or np.any(d < 0):
            raise DelayhwError(f"{source}: {node}: delays must be whole non-negative multiples "
                               f"of dt={dt}")
        return pre, w, d.astype(np.int64), bias

    # walk from the input through the chain of neuron nodes
    order, layers, prev = [], [], inputs[0]
    while True:
        nxt = [n for n in neurons if n not in order and any(
            branch(n, b)[0] == prev for b in into.get(n, []))]
        if not nxt:
            break
        if len(nxt) > 1:
            raise DelayhwError(f"{source}: graph: {prev} feeds several neuron layers {nxt}; "
                               f"only a chain of layers is supported")
        name = nxt[0]
        n = nodes[name]
        size = int(np.asarray(n.tau).size)
        ff = rec = None
        bias = None
        for b in into.get(name, []):
            pre, w, d, bvec = branch(name, b)
            kind = "rec" if pre == name else "ff" if pre == prev else None
            if kind is None:
                raise DelayhwError(f"{source}: {b}: connects {pre} to {name}; only feedforward "
                                   f"from the previous layer and recurrence are supported")
            if kind == "rec" and np.any(d[w != 0] < 1):
                raise DelayhwError(f"{source}: {b}: a recurrent connection of {name} has delay 0; "
                                   f"recurrent delays must be >= 1 step (DESIGN.md section 3)")
            acc = ff if kind == "ff" else rec
            if acc is None:
                acc = (np.zeros(w.shape), np.zeros(w.shape, dtype=np.int64))
            if w.shape != acc[0].shape:
                raise DelayhwError(f"{source}: {b}: weight shape {w.shape} differs from other "
                                   f"branches {acc[0].shape}")
            clash = (acc[0] != 0) & (w != 0)
            if clash.any():
                j, i = (int(v) for v in np.argwhere(clash)[0])
                raise DelayhwError(f"{source}: {b}: synapse ({j}, {i}) of {name} appears in two "
                                   f"branches; one delay per synapse is supported")
            acc = (acc[0] + w, np.where(w != 0, d, acc[1]))
            if kind == "ff":
                ff = acc
                if bvec is not None and np.any(bvec != 0):
                    bias = bvec if bias is None else bias + bvec
            else:
                rec = acc
        if ff is None:
            raise DelayhwError(f"{source}: {name}: has no feedforward input")
        beta, reset, gain = _dynamics(n, name, dt, source)
        layers.append(dict(name=name, kind="lif" if isinstance(n, nir.LIF) else "readout",
                           size=size, w=ff[0] * gain, d=ff[1], rec=rec, bias=bias, beta=beta,
                           reset=reset, gain=gain))
        order.append(name)
        prev = name
    if not layers or layers[-1]["kind"] != "readout" or any(
            l["kind"] != "lif" for l in layers[:-1]):
        raise DelayhwError(f"{source}: graph: must be a chain of LIF layers ending in one LI "
                           f"readout, got {[l['kind'] for l in layers]}")
    return _build(layers, meta, source)


def _single(into: dict, node: str, source: str) -> str:
    pre = into.get(node, [])
    if len(pre) != 1:
        raise DelayhwError(f"{source}: {node}: expected exactly one input edge, got {len(pre)}")
    return pre[0]


def _dynamics(n, name: str, dt: float, source: str) -> tuple[float, str, float]:
    """(beta, reset, input gain) of a LIF/LI node in the v[t] = beta v[t-1] + gain*I form."""
    import nir

    meta = {k: _text(v) for k, v in (n.metadata or {}).items()}
    if "beta" in meta:                           # written by delayhw: exact, gain 1
        beta, gain = float(meta["beta"]), 1.0
    else:
        tau = _uniform(source, name, "tau", n.tau)
        r = _uniform(source, name, "r", n.r)
        beta, gain = 1.0 - dt / tau, dt * r / tau
    if _uniform(source, name, "v_leak", n.v_leak) != 0:
        raise DelayhwError(f"{source}: {name}.v_leak: must be 0")
    reset = "zero"
    if isinstance(n, nir.LIF):
        theta = _uniform(source, name, "v_threshold", n.v_threshold)
        if theta <= 0 or _uniform(source, name, "v_reset", n.v_reset) != 0:
            raise DelayhwError(f"{source}: {name}: needs v_threshold > 0 and v_reset = 0")
        gain /= theta
        reset = str(meta.get("reset", "zero"))
    return beta, reset, gain


def _build(layers: list[dict], meta: dict, source: str) -> DelayNet:
    d_max = max([int(l["d"].max()) for l in layers] +
                [int(l["rec"][1].max()) for l in layers if l["rec"] is not None] + [0])
    recurrent = any(l["rec"] is not None for l in layers)
    config = json.loads(meta["config"]) if "config" in meta else {}
    config.update(n_inputs=int(layers[0]["w"].shape[1]), n_classes=layers[-1]["size"],
                  hidden=tuple(l["size"] for l in layers[:-1]),
                  d_max=max(d_max, int(config.get("d_max", 0)), 1 if recurrent else 0),
                  recurrent=recurrent, beta=layers[0]["beta"] if len(layers) > 1 else 0.8,
                  beta_out=layers[-1]["beta"], reset=layers[0]["reset"] if len(layers) > 1
                  else "subtract", bias=any(l["bias"] is not None for l in layers))
    net = DelayNet(NetConfig.from_dict(config))
    for layer, spec in zip(net.layers, layers):
        if spec["kind"] == "lif" and len(layers) > 1 and (
                spec["beta"] != config["beta"] or spec["reset"] != config["reset"]):
            raise DelayhwError(f"{source}: {spec['name']}: hidden layers must share beta and reset")
        with torch.no_grad():
            layer.ff.weight.copy_(torch.from_numpy(spec["w"]))
            layer.ff.delay.copy_(torch.from_numpy(spec["d"]).float())
            if layer.ff.bias is not None:
                b = spec["bias"] if spec["bias"] is not None else np.zeros(spec["size"])
                layer.ff.bias.copy_(torch.from_numpy(b * spec["gain"]))
            if spec["rec"] is not None:
                if layer.rec is None:
                    raise DelayhwError(f"{source}: {spec['name']}: recurrence in some layers "
                                       f"only is not supported")
                layer.rec.weight.copy_(torch.from_numpy(spec["rec"][0] * spec["gain"]))
                layer.rec.delay.copy_(torch.from_numpy(np.where(spec["rec"][0] != 0,
                                                                spec["rec"][1], 1)).float())
            elif layer.rec is not None:
                layer.rec.weight.zero_()
                layer.rec.delay.fill_(1.0)
    net.round_delays_()
    return net
