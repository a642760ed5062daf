"""File round-trips and bad-input handling (docs/design.md section 4)."""

import json
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest

from delayhw import DelayhwError, golden, load_input, load_model, load_result, netgen, save_model
from delayhw.cli import main
from delayhw.formats import Inputs
from delayhw.spec import Layer, Model


# ----------------------------------------------------------------------------- round trips


def test_model_round_trip(tmp_path):
    for seed in range(20):
        m = netgen.random_model(np.random.default_rng(seed))
        path = save_model(m, tmp_path / f"m{seed}.npz")
        back = load_model(path)
        assert back.meta() == m.meta()
        for name, arr in m.arrays().items():
            np.testing.assert_array_equal(back.arrays()[name], arr, err_msg=name)
            assert back.arrays()[name].dtype == np.int64


def test_model_round_trip_keeps_train_metadata_and_exact_name(tmp_path):
    m = netgen.example_model()
    m = replace(m, train={"scales": [0.5, 0.25], "task": "synthetic"})
    path = save_model(m, tmp_path / "model.weights")      # no '.npz' appended
    assert path.name == "model.weights" and path.exists()
    assert load_model(path).train == {"scales": [0.5, 0.25], "task": "synthetic"}


def test_input_and_result_round_trip(tmp_path):
    m, spikes = netgen.random_case(7, batch=3, steps=5)
    labels = np.array([0, 1, 0])[: 3] % m.n_outputs
    Inputs(spikes, labels).save(tmp_path / "in.npz")
    back = load_input(tmp_path / "in.npz", m)
    np.testing.assert_array_equal(back.spikes, spikes)
    np.testing.assert_array_equal(back.labels, labels)
    result = golden.run(m, spikes)
    result.save(tmp_path / "r.npz")
    r2 = load_result(tmp_path / "r.npz")
    np.testing.assert_array_equal(r2.scores, result.scores)
    assert r2.scores.dtype == np.int64
    np.testing.assert_array_equal(r2.predictions, result.predictions)
    assert len(r2.spikes) == len(m.lif_layers)
    for a, b in zip(r2.spikes, result.spikes):
        assert a.dtype == np.uint8
        np.testing.assert_array_equal(a, b)


def test_bool_spikes_are_accepted(tmp_path):
    m = netgen.example_model()
    s = np.zeros((1, 3, m.n_inputs), dtype=bool)
    s[0, 0, 0] = True
    np.savez(tmp_path / "in.npz", spikes=s)
    assert load_input(tmp_path / "in.npz", m).spikes.dtype == np.uint8


# ----------------------------------------------------------------------------- bad model files


def base_meta():
    return {"format": "delayhw-model", "version": 1, "n_inputs": 3, "layers": [
        {"name": "h", "kind": "lif", "size": 2, "w_bits": 4, "v_bits": 8, "f_bits": 3,
         "beta": 6, "d_max": 3, "recurrent": True, "bias": True, "threshold": 10,
         "reset": "subtract"},
        {"name": "o", "kind": "readout", "size": 2, "w_bits": 4, "v_bits": 8, "f_bits": 3,
         "beta": 8, "d_max": 2, "recurrent": False, "bias": False}]}


def base_arrays():
    return {"l0.w": np.array([[1, -2, 3], [0, 7, -8]]), "l0.d": np.array([[0, 1, 3], [2, 0, 1]]),
            "l0.w_rec": np.array([[0, 1], [2, 0]]), "l0.d_rec": np.array([[1, 2], [3, 1]]),
            "l0.bias": np.array([1, -1]),
            "l1.w": np.array([[1, 2], [3, 4]]), "l1.d": np.array([[0, 2], [1, 0]])}


def write_raw(path, meta, arrays):
    out = dict(arrays)
    if meta is not None:
        out["meta"] = np.array(json.dumps(meta))
    with open(path, "wb") as f:
        np.savez(f, **out)
    return path


def test_the_base_file_is_valid(tmp_path):
    m = load_model(write_raw(tmp_path / "ok.npz", base_meta(), base_arrays()))
    assert m.layers[0].recurrent and m.layers[0].has_bias


def edit_meta(fn):
    meta = base_meta()
    fn(meta)
    return meta, base_arrays()


def edit_arrays(fn):
    arrays = base_arrays()
    fn(arrays)
    return base_meta(), arrays


def _set(d, key, value):
    d[key] = value


BAD_MODELS = {
    # rule: (meta, arrays, words the message must contain)
    "wrong format": (*edit_meta(lambda m: _set(m, "format", "other")),
                     ["meta.format", "must be 'delayhw-model'"]),
    "wrong version": (*edit_meta(lambda m: _set(m, "version", 2)),
                      ["meta.version", "reads version 1"]),
    "float version": (*edit_meta(lambda m: _set(m, "version", 1.0)),
                      ["meta.version", "reads version 1 (the integer), got 1.0"]),
    "bool version": (*edit_meta(lambda m: _set(m, "version", True)),
                     ["meta.version", "got True"]),
    "wrong kind": (*edit_meta(lambda m: _set(m["layers"][0], "kind", "LIF")),
                   ["layers[0].kind", "must be one of ('lif', 'readout'), got 'LIF'"]),
    "1-d weights": (*edit_arrays(lambda a: _set(a, "l0.w", np.array([1, 2, 3]))),
                    ["l0.w", "must have shape (2, 3), got (3,)"]),
    "0-d delays": (*edit_arrays(lambda a: _set(a, "l0.d", np.array(1))),
                   ["l0.d", "must have shape (2, 3), got ()"]),
    "recurrent readout": (*edit_meta(lambda m: _set(m["layers"][1], "recurrent", True)),
                          ["layers[1].recurrent", "only lif layers may be recurrent"]),
    "unknown top key": (*edit_meta(lambda m: _set(m, "scale", 1)), ["unknown key", "scale"]),
    "missing layer key": (*edit_meta(lambda m: m["layers"][0].pop("beta")),
                          ["layers[0]", "missing key(s) ['beta']"]),
    "threshold on readout": (*edit_meta(lambda m: _set(m["layers"][1], "threshold", 3)),
                             ["layers[1]", "unknown key(s) ['threshold']",
                              "threshold/reset are only for lif layers"]),
    "missing array": (*edit_arrays(lambda a: a.pop("l0.d")), ["l0.d", "missing array"]),
    "extra array": (*edit_arrays(lambda a: _set(a, "l1.w_rec", np.zeros((2, 2), int))),
                    ["l1.w_rec", "unexpected array"]),
    "wrong shape": (*edit_arrays(lambda a: _set(a, "l1.w", np.zeros((2, 3), int))),
                    ["l1.w", "must have shape (2, 2), got (2, 3)"]),
    "weight out of range": (*edit_arrays(lambda a: _set(a, "l0.w", np.array([[1, 8, 0], [0, 0, 0]]))),
                            ["l0.w", "w_bits=4", "must be in -8..7, got 8"]),
    "bias out of range": (*edit_arrays(lambda a: _set(a, "l0.bias", np.array([-9, 0]))),
                          ["l0.bias", "w_bits=4", "must be in -8..7, got -9"]),
    "recurrent delay 0": (*edit_arrays(lambda a: _set(a, "l0.d_rec", np.array([[1, 0], [1, 1]]))),
                          ["l0.d_rec", "recurrent delay of 0"]),
    "delay above d_max": (*edit_arrays(lambda a: _set(a, "l1.d", np.array([[3, 0], [0, 0]]))),
                          ["l1.d", "d_max=2", "must be in 0..2, got 3"]),
    "negative delay": (*edit_arrays(lambda a: _set(a, "l0.d", np.array([[0, -1, 0], [0, 0, 0]]))),
                       ["l0.d", "0..d_max", "got -1"]),
    "float weights": (*edit_arrays(lambda a: _set(a, "l0.w", a["l0.w"].astype(float))),
                      ["l0.w", "must have an integer dtype, got float64"]),
    "w_bits too small": (*edit_meta(lambda m: _set(m["layers"][0], "w_bits", 1)),
                         ["layers[0].w_bits", "2..16"]),
    "w_bits too large": (*edit_meta(lambda m: _set(m["layers"][0], "w_bits", 17)),
                         ["layers[0].w_bits", "2..16"]),
    "v_bits out of range": (*edit_meta(lambda m: _set(m["layers"][1], "v_bits", 33)),
                            ["layers[1].v_bits", "4..32"]),
    "f_bits out of range": (*edit_meta(lambda m: _set(m["layers"][0], "f_bits", 0)),
                            ["layers[0].f_bits", "1..16"]),
    "d_max out of range": (*edit_meta(lambda m: _set(m["layers"][1], "d_max", 256)),
                           ["layers[1].d_max", "0..255"]),
    "size zero": (*edit_meta(lambda m: _set(m["layers"][1], "size", 0)),
                  ["layers[1].size", "must be in 1..65535, got 0"]),
    "n_inputs zero": (*edit_meta(lambda m: _set(m, "n_inputs", 0)), ["n_inputs", "1..65535"]),
    "beta above 2**f": (*edit_meta(lambda m: _set(m["layers"][0], "beta", 9)),
                        ["layers[0].beta", "0..8"]),
    "threshold zero": (*edit_meta(lambda m: _set(m["layers"][0], "threshold", 0)),
                       ["layers[0].threshold", "must be in 1..127, got 0"]),
    "threshold above vmax": (*edit_meta(lambda m: _set(m["layers"][0], "threshold", 128)),
                             ["layers[0].threshold", "1..127"]),
    "bad reset": (*edit_meta(lambda m: _set(m["layers"][0], "reset", "soft")),
                  ["layers[0].reset", "must be one of ('subtract', 'zero'), got 'soft'"]),
    "readout not last": (*edit_meta(lambda m: _set(m["layers"][0], "kind", "readout")),
                         ["layers[0].kind", "layers 0..L-2 must be 'lif' and the last "
                          "'readout'"]),
    "recurrent with d_max 0": (
        *edit_meta(lambda m: _set(m["layers"][0], "d_max", 0)),
        ["layers[0].d_max", "a recurrent layer needs d_max >= 1"]),
    "recurrent flag not bool": (*edit_meta(lambda m: _set(m["layers"][0], "recurrent", 1)),
                                ["layers[0].recurrent", "must be true or false, got 1"]),
    "no layers": (*edit_meta(lambda m: _set(m, "layers", [])),
                  ["meta.layers", "must be a non-empty list"]),
    "duplicate names": (*edit_meta(lambda m: _set(m["layers"][1], "name", "h")),
                        ["layers[1].name", "layer names must be unique"]),
}


@pytest.mark.parametrize("case", sorted(BAD_MODELS))
def test_bad_model_file_names_field_and_rule(tmp_path, case):
    meta, arrays, words = BAD_MODELS[case]
    path = write_raw(tmp_path / "bad.npz", meta, arrays)
    with pytest.raises(DelayhwError) as info:
        load_model(path)
    message = str(info.value)
    assert str(path) in message
    for word in words:
        assert word in message, f"{word!r} not in {message!r}"


def _python_model(**changes):
    """The base file's model built in Python, with layer fields replaced (``k_field``)."""
    meta, arrays = base_meta(), base_arrays()
    layers = []
    for k, e in enumerate(meta["layers"]):
        fields = dict(name=e["name"], kind=e["kind"], size=e["size"], w_bits=e["w_bits"],
                      v_bits=e["v_bits"], f_bits=e["f_bits"], beta=e["beta"], d_max=e["d_max"],
                      w=arrays[f"l{k}.w"], d=arrays[f"l{k}.d"],
                      w_rec=arrays.get(f"l{k}.w_rec"), d_rec=arrays.get(f"l{k}.d_rec"),
                      bias=arrays.get(f"l{k}.bias"), threshold=e.get("threshold"),
                      reset=e.get("reset"))
        fields.update({key[2:]: v for key, v in changes.items() if key.startswith(f"{k}_")})
        layers.append(Layer(**fields))
    return Model(n_inputs=meta["n_inputs"], layers=tuple(layers))


@pytest.mark.parametrize("changes,words", [
    ({"1_threshold": 3}, ["layers[1]", "a readout layer has no threshold or reset"]),
    ({"1_reset": "zero"}, ["layers[1]", "a readout layer has no threshold or reset"]),
    ({"1_w_rec": np.zeros((2, 2), int), "1_d_rec": np.ones((2, 2), int)},
     ["layers[1].recurrent", "only lif layers may be recurrent"]),
    ({"0_d_rec": None}, ["l0.w_rec/l0.d_rec", "a recurrent layer needs both w_rec and d_rec"]),
    ({"1_kind": "lif", "1_threshold": 3, "1_reset": "zero"},
     ["layers[1].kind", "layers 0..L-2 must be 'lif' and the last 'readout'"]),
])
def test_model_built_in_python_names_field_and_rule(changes, words):
    assert _python_model().validate() is not None        # the base is valid
    with pytest.raises(DelayhwError) as info:
        _python_model(**changes).validate("mine")
    message = str(info.value)
    assert message.startswith(f"mine: {words[0]}: ")
    for word in words[1:]:
        assert word in message


def test_meta_missing_and_not_json(tmp_path):
    with pytest.raises(DelayhwError, match="meta: missing"):
        load_model(write_raw(tmp_path / "a.npz", None, base_arrays()))
    with open(tmp_path / "b.npz", "wb") as f:
        np.savez(f, meta=np.array("{not json"), **base_arrays())
    with pytest.raises(DelayhwError, match="meta: not valid JSON"):
        load_model(tmp_path / "b.npz")


def test_truncated_file(tmp_path):
    good = write_raw(tmp_path / "good.npz", base_meta(), base_arrays()).read_bytes()
    for cut in (len(good) // 3, len(good) - 30):
        (tmp_path / "cut.npz").write_bytes(good[:cut])
        with pytest.raises(DelayhwError, match="cut.npz: (truncated|not an npz)"):
            load_model(tmp_path / "cut.npz")


def test_non_npz_files(tmp_path):
    (tmp_path / "text.npz").write_text("hello")
    with pytest.raises(DelayhwError, match="not an npz archive"):
        load_model(tmp_path / "text.npz")
    np.save(tmp_path / "plain.npy", np.zeros(3))
    with pytest.raises(DelayhwError, match="not an npz archive"):
        load_model(tmp_path / "plain.npy")
    with pytest.raises(DelayhwError, match="no such file"):
        load_model(tmp_path / "absent.npz")


def test_pickle_inside_npz_is_refused(tmp_path):
    arrays = base_arrays()
    arrays["l0.w"] = np.array([{"evil": 1}, None], dtype=object)
    path = tmp_path / "pickled.npz"
    with open(path, "wb") as f:
        np.savez(f, meta=np.array(json.dumps(base_meta())), **arrays)
    with pytest.raises(DelayhwError, match="pickled"):
        load_model(path)


def test_bad_input_files(tmp_path):
    m = netgen.example_model()
    np.savez(tmp_path / "a.npz", spikes=np.full((1, 2, m.n_inputs), 2, np.uint8))
    with pytest.raises(DelayhwError, match="a.npz: spikes: values must be 0 or 1"):
        load_input(tmp_path / "a.npz", m)
    np.savez(tmp_path / "b.npz", spikes=np.zeros((1, 2, 3), np.uint8))
    with pytest.raises(DelayhwError, match="b.npz: spikes: the model has n_inputs=16"):
        load_input(tmp_path / "b.npz", m)
    np.savez(tmp_path / "c.npz", spikes=np.zeros((2, 2, 16), np.uint8), labels=np.array([0, 9]))
    with pytest.raises(DelayhwError, match=r"c.npz: labels: must be in 0..3"):
        load_input(tmp_path / "c.npz", m)
    np.savez(tmp_path / "d.npz", spikes=np.zeros((2, 2, 16), np.float32))
    with pytest.raises(DelayhwError, match="d.npz: spikes: must be bool or integer"):
        load_input(tmp_path / "d.npz", m)
    np.savez(tmp_path / "e.npz", spikes=np.zeros((2, 2, 16), np.uint8), extra=np.zeros(1))
    with pytest.raises(DelayhwError, match="e.npz: extra: unexpected array"):
        load_input(tmp_path / "e.npz", m)


def test_save_model_refuses_an_invalid_model(tmp_path):
    m = netgen.example_model()
    bad = m.with_layers([replace(m.layers[0], threshold=0), m.layers[1]])
    with pytest.raises(DelayhwError, match="threshold"):
        save_model(bad, tmp_path / "x.npz")
    assert not (tmp_path / "x.npz").exists()


# ----------------------------------------------------------------------------- the CLI


def test_cli_golden_writes_result_and_reports_accuracy(tmp_path, capsys):
    m, spikes = netgen.random_case(11, batch=4, steps=6)
    save_model(m, tmp_path / "m.npz")
    Inputs(spikes, np.zeros(4, dtype=int)).save(tmp_path / "in.npz")
    assert main(["golden", str(tmp_path / "m.npz"), str(tmp_path / "in.npz"),
                 "--out", str(tmp_path / "r.npz")]) == 0
    assert "accuracy" in capsys.readouterr().out
    np.testing.assert_array_equal(load_result(tmp_path / "r.npz").scores,
                                  golden.run(m, spikes).scores)
    # the result exists now: a second run must not overwrite it silently
    assert main(["golden", str(tmp_path / "m.npz"), str(tmp_path / "in.npz"),
                 "--out", str(tmp_path / "r.npz")]) == 2
    assert "--force" in capsys.readouterr().err


@pytest.mark.parametrize("case", ["recurrent delay 0", "weight out of range", "wrong version"])
def test_cli_bad_model_prints_one_line_and_exits_2(tmp_path, case):
    meta, arrays, words = BAD_MODELS[case]
    path = write_raw(tmp_path / "bad.npz", meta, arrays)
    np.savez(tmp_path / "in.npz", spikes=np.zeros((1, 2, 3), np.uint8))
    proc = subprocess.run([sys.executable, "-m", "delayhw", "golden", str(path),
                           str(tmp_path / "in.npz"), "--out", str(tmp_path / "r.npz")],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("delayhw: error:")
    assert "Traceback" not in proc.stderr
    assert words[0] in lines[0]
    assert not (tmp_path / "r.npz").exists()


def test_cli_truncated_and_pickled_files_exit_2(tmp_path, capsys):
    (tmp_path / "t.npz").write_bytes(b"PK\x03\x04garbage")
    np.savez(tmp_path / "in.npz", spikes=np.zeros((1, 2, 3), np.uint8))
    assert main(["golden", str(tmp_path / "t.npz"), str(tmp_path / "in.npz"),
                 "--out", str(tmp_path / "r.npz")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "t.npz" in err


def test_cli_help_lists_commands(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert "golden" in out and "demo" in out


def test_layer_kinds_are_the_enum_in_code_and_the_strings_in_the_file(tmp_path):
    """A layer's kind is a LayerKind member however the layer was made (from the string too,
    so it still equals the string); the model file keeps writing "lif"/"readout", and a loaded
    model holds the members again."""
    from delayhw.formats import read_npz
    from delayhw.spec import LayerKind, LayerShape
    model = netgen.example_model()
    assert [type(l.kind) for l in model.layers] == [LayerKind, LayerKind]
    assert [l.kind for l in model.layers] == ["lif", "readout"]
    made = replace(model.layers[0], kind="lif")
    assert made.kind is LayerKind.LIF and made.shape.kind is LayerKind.LIF
    assert LayerShape("readout", 1, 1, 2, 4, 1, 0, False, False).kind is LayerKind.READOUT
    path = save_model(model, tmp_path / "m.npz")
    meta = json.loads(read_npz(path)["meta"].item())
    assert [l["kind"] for l in meta["layers"]] == ["lif", "readout"]
    assert all(type(l["kind"]) is str for l in meta["layers"])
    loaded = load_model(path)
    assert [l.kind for l in loaded.layers] == [LayerKind.LIF, LayerKind.READOUT]
    assert all(type(l.kind) is LayerKind for l in loaded.layers)
    with pytest.raises(DelayhwError, match=r"layers\[0\]\.kind: must be one of"):
        model.with_layers([replace(model.layers[0], kind="spiking"),
                           model.layers[1]]).validate()
