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
from delayhw.publish import show_path
from delayhw.spec import LIMITS, RESETS, LayerKind

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
    if layer.kind is LayerKind.LIF:
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
    """Write the NIR file of ``net``. The HDF5 image is built in memory and then written
    with one ordinary write, so a full disk is an OSError here (never a crash inside
    HDF5's own writes)."""
    import io

    import nir

    path = Path(path)
    image = io.BytesIO()
    nir.write(image, to_nir(net, dt))
    with open(path, "wb") as f:
        f.write(image.getbuffer())
    return path


def read_nir(path: str | Path) -> DelayNet:
    """Read a NIR file written by :func:`write_nir` (or of the same shape) into a
    :class:`DelayNet` with integer (hard) delays."""
    import nir

    from delayhw.formats import check_regular

    source = show_path(path)
    check_regular(path, source, "a NIR file")
    path = Path(path)
    _check_declared_sizes(path, source)
    try:
        graph = nir.read(path)
    except Exception as exc:  # nir/h5py raise many types for a bad file
        raise DelayhwError(f"{source}: not a readable NIR file ({type(exc).__name__}: "
                           f"{show_path(str(exc))})") from None
    return from_nir(graph, source)


def _check_declared_sizes(path: Path, source: str) -> None:
    """The arrays an HDF5 file declares, against the memory budget, before any is read."""
    import h5py

    from delayhw.limits import check_memory
    sizes: list[tuple[str, int]] = []

    def visit(name, obj):
        if isinstance(obj, h5py.Dataset):
            sizes.append((name, int(np.prod(obj.shape, dtype=object)) * max(obj.dtype.itemsize, 8)))
    try:
        with h5py.File(path, "r") as f:
            f.visititems(visit)
    except Exception as exc:
        raise DelayhwError(f"{source}: not a readable NIR file ({type(exc).__name__}: "
                           f"{show_path(str(exc))})") from None
    if sizes:                          # named by its largest array
        check_memory(source, max(sizes, key=lambda x: x[1])[0], sum(n for _, n in sizes),
                     "reading the network")


# ----------------------------------------------------------------------------- import


def _text(x: Any) -> Any:
    if isinstance(x, bytes):
        return x.decode("utf-8")
    if isinstance(x, np.ndarray) and x.shape == ():
        return _text(x.item())
    return x


def _uniform(source: str, name: str, what: str, a: np.ndarray) -> float:
    try:
        a = np.asarray(a, dtype=np.float64).ravel()
    except (TypeError, ValueError):
        raise DelayhwError(f"{source}: {name}.{what}: must be numbers") from None
    if not np.all(np.isfinite(a)):
        raise DelayhwError(f"{source}: {name}.{what}: must be finite (has NaN or infinity)")
    if a.size and not np.all(a == a[0]):
        raise DelayhwError(f"{source}: {name}.{what}: per-neuron values are not supported "
                           f"(delayhw layers share one value), got {np.unique(a)[:4]}...")
    return float(a[0]) if a.size else 0.0


def from_nir(graph, source: str = "NIR graph") -> DelayNet:
    """Rebuild a :class:`DelayNet` from a NIR graph (see module docstring)."""
    import nir

    nodes, edges = graph.nodes, list(graph.edges)
    meta = {k: _text(v) for k, v in (graph.metadata or {}).items()}
    dt = _number(source, "metadata.dt", meta.get("dt", 1.0), lo=0.0, lo_open=True)
    into: dict[str, list[str]] = {}
    for a, b in edges:
        into.setdefault(b, []).append(a)
    inputs = [k for k, v in nodes.items() if isinstance(v, nir.Input)]
    if len(inputs) != 1:
        raise DelayhwError(f"{source}: graph: needs exactly one Input node, got {len(inputs)}")
    neurons = [k for k, v in nodes.items() if isinstance(v, (nir.LIF, nir.LI))]

    def branch(neuron: str, node: str) -> tuple[str, np.ndarray, np.ndarray, np.ndarray | None]:
        """(presynaptic node, W, D, bias) of one branch ending at ``neuron``."""
        delay_out = delay_in = out_node = None
        if isinstance(nodes[node], nir.Delay):
            out_node = node
            delay_out, node = nodes[node].delay, _single(into, node, source)
        if not isinstance(nodes[node], (nir.Affine, nir.Linear)):
            raise DelayhwError(f"{source}: {node}: expected Affine or Linear feeding {neuron}, "
                               f"got {type(nodes[node]).__name__}")
        w = _array(source, f"{node}.weight", nodes[node].weight, ndim=2)
        bias = _array(source, f"{node}.bias", nodes[node].bias, ndim=1, size=w.shape[0]) \
            if isinstance(nodes[node], nir.Affine) else None
        pre = _single(into, node, source)
        delay_node = None
        if isinstance(nodes[pre], nir.Delay):
            delay_node = pre
            delay_in, pre = nodes[pre].delay, _single(into, pre, source)
        steps = np.zeros(w.shape)
        if delay_out is not None:
            steps = steps + _delay_steps(source, f"{out_node}.delay", delay_out, dt,
                                         w.shape[0])[:, None]
        if delay_in is not None:
            steps = steps + _delay_steps(source, f"{delay_node}.delay", delay_in, dt,
                                         w.shape[1])[None, :]
        d = np.rint(steps)
        if np.any(d > LIMITS["d_max"][1]):
            raise DelayhwError(f"{source}: {node}: delays of up to {int(d.max())} steps (dt={dt}); "
                               f"at most {LIMITS['d_max'][1]} are supported "
                               f"(docs/design.md section 3)")
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
                                   f"recurrent delays must be >= 1 step (docs/design.md section 3)")
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
        for what, acc in (("feedforward", ff), ("recurrent", rec)):
            if acc is not None and (acc[0].shape[0] != size or (
                    what == "recurrent" and acc[0].shape[1] != size)):
                raise DelayhwError(f"{source}: {name}: {what} weights of shape "
                                   f"{acc[0].shape} do not match its {size} neurons")
        beta, reset, gain = _dynamics(n, name, dt, source)
        layers.append(dict(name=name, kind=LayerKind.LIF if isinstance(n, nir.LIF)
                           else LayerKind.READOUT,
                           size=size, w=ff[0] * gain, d=ff[1], rec=rec, bias=bias, beta=beta,
                           reset=reset, gain=gain))
        order.append(name)
        prev = name
    if not layers or layers[-1]["kind"] != LayerKind.READOUT or any(
            l["kind"] != LayerKind.LIF for l in layers[:-1]):
        raise DelayhwError(f"{source}: graph: must be a chain of LIF layers ending in one LI "
                           f"readout, got {[l['kind'] for l in layers]}")
    return _build(layers, meta, source)


def _single(into: dict, node: str, source: str) -> str:
    pre = into.get(node, [])
    if len(pre) != 1:
        raise DelayhwError(f"{source}: {node}: expected exactly one input edge, got {len(pre)}")
    return pre[0]


def _number(source: str, field: str, value: Any, lo: float | None = None,
            hi: float | None = None, lo_open: bool = False) -> float:
    """A finite real number in ``lo..hi`` (``lo_open``: lo excluded), or a one-line error
    naming the field; never clamped."""
    value = _text(value)
    try:
        if isinstance(value, (bool, np.bool_)) or isinstance(value, str):
            raise TypeError
        x = float(value)
    except (TypeError, ValueError, OverflowError):
        raise DelayhwError(f"{source}: {field}: must be a number, got {show_path(repr(value))[:60]}") \
            from None
    bad = not np.isfinite(x) or (lo is not None and (x <= lo if lo_open else x < lo)) or (
        hi is not None and x > hi)
    if bad:
        rule = ("a finite number" if lo is None and hi is None else
                f"a finite number {'>' if lo_open else '>='} {lo:g}" if hi is None else
                f"a finite number in [{lo:g}, {hi:g}]")
        raise DelayhwError(f"{source}: {field}: must be {rule}, got {x!r}")
    return x


def _array(source: str, field: str, value: Any, ndim: int, size: int | None = None) -> np.ndarray:
    """A finite float array of ``ndim`` dimensions (``size`` elements along the first)."""
    try:
        a = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise DelayhwError(f"{source}: {field}: must be a numeric array") from None
    if a.ndim != ndim or (size is not None and a.shape[0] != size):
        raise DelayhwError(f"{source}: {field}: must be a {ndim}-d array"
                           + (f" of {size} values" if size is not None else "")
                           + f", got shape {a.shape}")
    if ndim == 2 and any(n > LIMITS["size"][1] or n < 1 for n in a.shape):
        raise DelayhwError(f"{source}: {field}: shape {a.shape}: layer sizes and inputs must be "
                           f"in 1..{LIMITS['size'][1]}")
    if not np.all(np.isfinite(a)):
        raise DelayhwError(f"{source}: {field}: must be finite (has NaN or infinity)")
    return a


def _delay_steps(source: str, field: str, delay: Any, dt: float, n: int) -> np.ndarray:
    """A Delay node's delays in steps: finite, >= 0, whole multiples of ``dt``."""
    a = _array(source, field, delay, ndim=1, size=n)
    steps = a / dt
    if np.any(steps < 0) or np.any(np.abs(steps - np.rint(steps)) > 1e-6):
        raise DelayhwError(f"{source}: {field}: delays must be whole non-negative multiples "
                           f"of dt={dt}")
    if np.any(steps > LIMITS["d_max"][1]):
        raise DelayhwError(f"{source}: {field}: a delay of {steps.max():g} steps (dt={dt}); at "
                           f"most {LIMITS['d_max'][1]} are supported (docs/design.md section 3)")
    return steps


#: The fields of ``metadata.config`` and what each must be.
_CONFIG_FIELDS = {"n_inputs": "size", "n_classes": "size", "hidden": "sizes", "d_max": "d_max",
                  "recurrent": "bool", "kernel": "kernel", "beta": "unit", "beta_out": "unit",
                  "reset": "reset", "bias": "bool", "learn_delays": "bool", "seed": "seed"}


def _check_config(source: str, text: Any) -> dict:
    """``metadata.config``: strict JSON (delayhw.formats.parse_meta_json), an object of
    known NetConfig fields, each of its type and range."""
    from delayhw.formats import parse_meta_json

    from .kernels import KERNELS

    field = "metadata.config"
    if not isinstance(text, str):
        raise DelayhwError(f"{source}: {field}: must be a JSON string")
    config = parse_meta_json(source, text, field)
    if not isinstance(config, dict):
        raise DelayhwError(f"{source}: {field}: must be a JSON object")
    unknown = sorted(set(config) - set(_CONFIG_FIELDS))
    if unknown:
        raise DelayhwError(f"{source}: {field}: unknown key(s) {unknown}")
    for key, value in config.items():
        kind, where = _CONFIG_FIELDS[key], f"{field}.{key}"
        if kind == "bool" and not isinstance(value, bool):
            raise DelayhwError(f"{source}: {where}: must be true or false, got {value!r}")
        if kind in ("size", "d_max", "seed"):
            lo, hi = (0, (1 << 32) - 1) if kind == "seed" else LIMITS[kind]
            if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
                raise DelayhwError(f"{source}: {where}: must be an integer in {lo}..{hi}, "
                                   f"got {value!r}")
        if kind == "sizes":
            lo, hi = LIMITS["size"]
            if not isinstance(value, list) or not 1 <= len(value) <= 8 or any(
                    not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi
                    for v in value):
                raise DelayhwError(f"{source}: {where}: must be a list of 1 to 8 sizes in "
                                   f"{lo}..{hi}, got {value!r}")
        if kind == "unit":
            _number(source, where, value, 0.0, 1.0)
        if kind == "kernel" and value not in KERNELS:
            raise DelayhwError(f"{source}: {where}: must be one of {list(KERNELS)}, got {value!r}")
        if kind == "reset" and value not in RESETS:
            raise DelayhwError(f"{source}: {where}: must be one of {list(RESETS)}, got {value!r}")
    return config


def _dynamics(n, name: str, dt: float, source: str) -> tuple[float, str, float]:
    """(beta, reset, input gain) of a LIF/LI node in the v[t] = beta v[t-1] + gain*I form."""
    import nir

    meta = {k: _text(v) for k, v in (n.metadata or {}).items()}
    if "beta" in meta:                           # written by delayhw: exact, gain 1
        beta, gain = _number(source, f"{name}.metadata.beta", meta["beta"], 0.0, 1.0), 1.0
    else:
        tau = _number(source, f"{name}.tau", _uniform(source, name, "tau", n.tau), 0.0,
                      lo_open=True)
        r = _number(source, f"{name}.r", _uniform(source, name, "r", n.r))
        beta, gain = 1.0 - dt / tau, dt * r / tau
        if not 0.0 <= beta <= 1.0:
            raise DelayhwError(f"{source}: {name}.tau: tau={tau:g} with dt={dt:g} gives the "
                               f"decay beta = 1 - dt/tau = {beta:g}, outside [0, 1] (needs "
                               f"tau >= dt)")
    if _uniform(source, name, "v_leak", n.v_leak) != 0:
        raise DelayhwError(f"{source}: {name}.v_leak: must be 0")
    reset = "zero"
    if isinstance(n, nir.LIF):
        theta = _number(source, f"{name}.v_threshold",
                        _uniform(source, name, "v_threshold", n.v_threshold), 0.0, lo_open=True)
        if _uniform(source, name, "v_reset", n.v_reset) != 0:
            raise DelayhwError(f"{source}: {name}: needs v_threshold > 0 and v_reset = 0")
        gain /= theta
        reset = meta.get("reset", "zero")
        if reset not in RESETS:
            raise DelayhwError(f"{source}: {name}.metadata.reset: must be one of "
                               f"{list(RESETS)}, got {show_path(repr(reset))[:60]}")
    return beta, reset, gain


def _build(layers: list[dict], meta: dict, source: str) -> DelayNet:
    d_max = max([int(l["d"].max()) for l in layers] +
                [int(l["rec"][1].max()) for l in layers if l["rec"] is not None] + [0])
    recurrent = any(l["rec"] is not None for l in layers)
    config = _check_config(source, meta["config"]) if "config" in meta else {}
    config.update(n_inputs=int(layers[0]["w"].shape[1]), n_classes=layers[-1]["size"],
                  hidden=tuple(l["size"] for l in layers[:-1]),
                  d_max=max(d_max, int(config.get("d_max", 0)), 1 if recurrent else 0),
                  recurrent=recurrent, beta=layers[0]["beta"] if len(layers) > 1 else 0.8,
                  beta_out=layers[-1]["beta"], reset=layers[0]["reset"] if len(layers) > 1
                  else "subtract", bias=any(l["bias"] is not None for l in layers))
    net = DelayNet(NetConfig.from_dict(config))
    for layer, spec in zip(net.layers, layers):
        if spec["kind"] == LayerKind.LIF and len(layers) > 1 and (
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
