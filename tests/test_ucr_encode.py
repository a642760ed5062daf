"""bench/ucr_encode.py: the README's level-crossing encoding of a UCR/UEA .ts pair."""

import importlib.util
from pathlib import Path

import numpy as np

_spec = importlib.util.spec_from_file_location(
    "ucr_encode", Path(__file__).parents[1] / "bench" / "ucr_encode.py")
ucr = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(ucr)

TS = """# comment
@problemName Toy
@univariate false
@classLabel true a b
@data
{ramp}:{down}:b
{down}:{ramp_short}:a
"""


def _write(tmp_path, name):
    ramp = ",".join(str(v) for v in range(20))            # rises through every level once
    down = ",".join(str(19 - v) for v in range(20))       # falls through every level once
    ramp_short = ",".join(str(v) for v in range(10))      # 10 samples: shorter series
    path = tmp_path / name
    path.write_text(TS.format(ramp=ramp, down=down, ramp_short=ramp_short))
    return path


def test_crossings_channels_labels_and_short_series(tmp_path):
    series, labels = ucr.read_ts(_write(tmp_path, "t.ts"))
    assert labels == ["b", "a"] and series[0].shape == (2, 20) and series[1].shape == (2, 10)
    # levels between the extremes of a z-normalised ramp: each crossed exactly once
    z = (np.arange(20) - 9.5) / np.arange(20).std()
    levels = np.tile(np.linspace(z[2] + 0.01, z[17] + 0.01, ucr.LEVELS), (2, 1))
    spikes = ucr.encode(series, levels, stride=1, steps=20)
    assert spikes.shape == (2, 20, 32)
    up0, down0 = spikes[0, :, 0:8], spikes[0, :, 8:16]         # sample 0, dimension 0 (ramp)
    assert up0.sum(0).tolist() == [1] * 8 and down0.sum() == 0
    # the spike comes at the step whose value is the first at or above the level
    assert [int(np.argmax(up0[:, k])) for k in range(8)] == \
        [int(np.argmax(z >= lv)) for lv in levels[0]]
    up1, down1 = spikes[0, :, 16:24], spikes[0, :, 24:32]      # dimension 1 (falling)
    assert down1.sum(0).tolist() == [1] * 8 and up1.sum() == 0
    # the 10-sample series of sample 1, dimension 1, stops spiking after step 9
    assert spikes[1, 10:, 16:32].sum() == 0


def test_main_writes_a_delayhw_input_pair(tmp_path, monkeypatch):
    import sys

    from delayhw import load_input
    tr, te = _write(tmp_path, "x_TRAIN.ts"), _write(tmp_path, "x_TEST.ts")
    monkeypatch.setattr(sys, "argv", ["ucr_encode", str(tr), str(te), "--out",
                                      str(tmp_path / "toy")])
    ucr.main()
    data = load_input(tmp_path / "toy_train.npz")
    assert data.spikes.shape == (2, 20, 32) and data.labels.tolist() == [1, 0]
