"""The main job end to end: `delayhw demo` trains, exports, generates Verilog and
co-simulates in Verilator, and says RTL == golden."""

import json

import numpy as np

from delayhw import golden, load_input, load_model, load_result
from delayhw.cli import main


def test_demo_runs_the_whole_flow(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert "yes, bit for bit" in text
    model = load_model(out / "model.npz")
    inputs = load_input(out / "model.test.npz", model)
    rtl = load_result(out / "rtl_result.npz")
    expected = golden.run(model, inputs.spikes)
    np.testing.assert_array_equal(rtl.scores, expected.scores)
    for a, b in zip(rtl.spikes, expected.spikes):
        np.testing.assert_array_equal(a, b)
    assert expected.accuracy(inputs.labels) > 0.8
    manifest = json.loads((out / "hw" / "manifest.json").read_text())
    assert manifest["parameters"]["n_inputs"] == model.n_inputs
    for png in ("agreement.png", "train/model.curves.png", "train/model.delays.png"):
        assert (out / png).stat().st_size > 1000
    # a second run into the same directory needs --force
    assert main(["demo", "-o", str(out)]) == 2
