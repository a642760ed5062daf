"""PNG plots of a training run (matplotlib, Agg backend): curves, delays, a spike raster."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from delayhw.plots import pyplot, save
from delayhw.spec import Model


def training_curves(history: list[dict], path: Path, title: str = "") -> Path:
    """Train/validation accuracy and loss per epoch; the float and QAT stages side by side
    on one epoch axis (QAT epoch 0 = plain post-training quantisation)."""
    plt = pyplot()
    fig, (ax_acc, ax_loss) = plt.subplots(1, 2, figsize=(10, 3.8))
    x, offset = [], 0
    for r in history:
        if r["phase"] == "float":
            offset = r["epoch"]
            x.append(r["epoch"])
        else:
            x.append(offset + r["epoch"])
    x = np.array(x)
    for phase, style in (("float", "-"), ("qat", "--")):
        m = np.array([r["phase"] == phase for r in history])
        if not m.any():
            continue
        tr = np.array([r["train_acc"] for r in history])[m] * 100
        va = np.array([r["val_acc"] for r in history])[m] * 100
        loss = np.array([r["loss"] for r in history])[m]
        ax_acc.plot(x[m], tr, style, color="C0", marker=".", label=f"{phase} train")
        ax_acc.plot(x[m], va, style, color="C1", marker=".", label=f"{phase} val")
        ax_loss.plot(x[m], loss, style, color="C2", marker=".", label=f"{phase} loss")
    ax_acc.set(xlabel="epoch", ylabel="accuracy (%)", ylim=(0, 101))
    ax_acc.legend(fontsize=8)
    ax_loss.set(xlabel="epoch", ylabel="cross-entropy")
    ax_loss.legend(fontsize=8)
    return save(fig, path, title)


def delay_histograms(model: Model, path: Path) -> Path:
    """Histogram of the integer delays of the present synapses (nonzero weight), one panel
    per layer (feedforward and recurrent)."""
    plt = pyplot()
    panels = []
    for layer in model.layers:
        panels.append((f"{layer.name}: feedforward", layer.d[layer.w != 0], layer.d_max))
        if layer.recurrent:
            panels.append((f"{layer.name}: recurrent", layer.d_rec[layer.w_rec != 0],
                           layer.d_max))
    fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 3.2), squeeze=False)
    for ax, (name, d, d_max) in zip(axes[0], panels):
        ax.hist(d, bins=np.arange(d_max + 2) - 0.5, color="C0", edgecolor="white")
        ax.set(title=f"{name} ({d.size} synapses)", xlabel="delay (steps)", ylabel="synapses")
    return save(fig, path)


def spike_raster(inputs: np.ndarray, layer_spikes: list[np.ndarray], names: list[str],
                 scores: np.ndarray, path: Path, title: str = "") -> Path:
    """Raster of one sample: the inputs ``(T, C)`` and each lif layer's spikes ``(T, N)``,
    plus the readout's final scores."""
    plt = pyplot()
    rows = [("input", inputs)] + list(zip(names, layer_spikes))
    heights = [max(2, a.shape[1]) for _, a in rows] + [6]
    fig, axes = plt.subplots(len(rows) + 1, 1, figsize=(8, 1.2 + 0.12 * sum(heights)),
                             gridspec_kw={"height_ratios": heights})
    for ax, (name, a) in zip(axes, rows):
        t, n = np.nonzero(a)
        ax.scatter(t, n, s=8, marker="|", color="k")
        ax.set(xlim=(-0.5, a.shape[0] - 0.5), ylim=(-0.5, a.shape[1] - 0.5), ylabel=name)
        ax.tick_params(labelbottom=False)
    axes[-2].tick_params(labelbottom=True)
    axes[-2].set_xlabel("time step")
    ax = axes[-1]
    ax.bar(np.arange(len(scores)), scores, color=["C1" if i == np.argmax(scores) else "C0"
                                                  for i in range(len(scores))])
    ax.set(xlabel="class", ylabel="score")
    return save(fig, path, title)
