"""Plots people look at (PNG, matplotlib's Agg backend, imported lazily)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .formats import Result


def pyplot():
    """matplotlib.pyplot on the Agg backend (no display needed)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def save(fig, path: str | Path, title: str = "") -> Path:
    """Lay out ``fig``, write it as PNG at ``path``, close it."""
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    pyplot().close(fig)
    return path


def agreement_plot(golden: Result, rtl: Result, path: str | Path, sample: int = 0,
                   title: str = "RTL vs golden") -> Path:
    """For one sample: a raster per lif layer with golden spikes as dots and RTL spikes as
    rings (a dot inside a ring means they agree; a lone mark is a difference), and the
    readout scores side by side."""
    plt = pyplot()
    n_lif = len(golden.spikes)
    fig, axes = plt.subplots(1, n_lif + 1, figsize=(4.5 * (n_lif + 1), 3.6), squeeze=False)
    for k in range(n_lif):
        ax = axes[0, k]
        t_g, j_g = np.nonzero(golden.spikes[k][sample])
        t_r, j_r = np.nonzero(rtl.spikes[k][sample])
        ax.scatter(t_g, j_g, s=6, c="k", label="golden")
        ax.scatter(t_r, j_r, s=40, facecolors="none", edgecolors="tab:red", lw=0.8, label="RTL")
        agree = np.array_equal(golden.spikes[k][sample], rtl.spikes[k][sample])
        ax.set(xlabel="time step", ylabel="unit",
               title=f"layer {k} spikes ({'identical' if agree else 'DIFFER'})")
        ax.legend(loc="upper right", fontsize=7)
    ax = axes[0, -1]
    units = np.arange(golden.scores.shape[1])
    ax.bar(units - 0.2, golden.scores[sample], 0.4, label="golden", color="k")
    ax.bar(units + 0.2, rtl.scores[sample], 0.4, label="RTL", color="tab:red")
    agree = np.array_equal(golden.scores[sample], rtl.scores[sample])
    ax.set(xlabel="readout unit", ylabel="score",
           title=f"scores ({'identical' if agree else 'DIFFER'})")
    ax.legend(fontsize=7)
    return save(fig, path, f"{title}, sample {sample}")
