"""Hand-computed cases, one per rule of docs/design.md section 3. Expected values are worked out
by hand in the comments, never by running the model."""

import numpy as np
import pytest

from delayhw import DelayhwError, golden
from delayhw.spec import Layer, Model


def readout(w, d=None, *, beta=16, f_bits=4, v_bits=12, w_bits=8, d_max=None, bias=None):
    w = np.atleast_2d(np.array(w))
    d = np.zeros_like(w) if d is None else np.atleast_2d(np.array(d))
    return Layer(name="out", kind="readout", size=w.shape[0], w_bits=w_bits, v_bits=v_bits,
                 f_bits=f_bits, beta=beta, d_max=int(d.max()) if d_max is None else d_max,
                 w=w, d=d, bias=None if bias is None else np.array(bias))


def lif(w, d=None, *, threshold, reset="subtract", beta=16, f_bits=4, v_bits=12, w_bits=8,
        d_max=None, w_rec=None, d_rec=None, name="hid"):
    w = np.atleast_2d(np.array(w))
    d = np.zeros_like(w) if d is None else np.atleast_2d(np.array(d))
    dm = max(int(d.max()), 0 if d_rec is None else int(np.max(d_rec)))
    return Layer(name=name, kind="lif", size=w.shape[0], w_bits=w_bits, v_bits=v_bits,
                 f_bits=f_bits, beta=beta, d_max=dm if d_max is None else d_max, w=w, d=d,
                 w_rec=None if w_rec is None else np.atleast_2d(np.array(w_rec)),
                 d_rec=None if d_rec is None else np.atleast_2d(np.array(d_rec)),
                 threshold=threshold, reset=reset)


def model(n_inputs, *layers):
    return Model(n_inputs=n_inputs, layers=tuple(layers)).validate()


def spikes_at(steps, n_inputs, events):
    """One sample with spikes at (t, channel) pairs."""
    s = np.zeros((1, steps, n_inputs), dtype=np.uint8)
    for t, i in events:
        s[0, t, i] = 1
    return s


def readout_trace(m, spikes):
    """v(t) of the readout, recovered from scores of growing prefixes."""
    cumulative = [golden.run(m, spikes[:, :t + 1]).scores[0] for t in range(spikes.shape[1])]
    return np.diff(np.array([np.zeros_like(cumulative[0])] + cumulative), axis=0)[:, 0].tolist()


def test_decay_rounds_half_up_with_floor_shift_for_negative_values():
    # w=-5 at t=0, beta=3, f=2:  v0 = -5
    # v1 = (-5*3 + 2) >> 2 = -13 >> 2 = floor(-3.25) = -4
    # v2 = (-4*3 + 2) >> 2 = -10 >> 2 = floor(-2.5)  = -3
    # v3 = (-3*3 + 2) >> 2 =  -7 >> 2 = floor(-1.75) = -2
    m = model(1, readout([-5], beta=3, f_bits=2))
    assert readout_trace(m, spikes_at(4, 1, [(0, 0)])) == [-5, -4, -3, -2]


def test_decay_of_positive_values():
    # w=5, beta=3, f=2: 5, (15+2)>>2=4, (12+2)>>2=3, (9+2)>>2=2
    m = model(1, readout([5], beta=3, f_bits=2))
    assert readout_trace(m, spikes_at(4, 1, [(0, 0)])) == [5, 4, 3, 2]


def test_decay_exact_halves():
    # beta=2, f=2 halves: v=1 -> (2+2)>>2 = 1 (0.5 rounds up); v=-1 -> (-2+2)>>2 = 0 (-0.5 -> 0)
    up = model(1, readout([1], beta=2, f_bits=2))
    down = model(1, readout([-1], beta=2, f_bits=2))
    assert readout_trace(up, spikes_at(3, 1, [(0, 0)])) == [1, 1, 1]
    assert readout_trace(down, spikes_at(3, 1, [(0, 0)])) == [-1, 0, 0]


def test_beta_full_scale_means_no_leak_and_zero_means_no_memory():
    # beta = 2**f: (v*16 + 8) >> 4 = v exactly, also for negative v
    keep = model(1, readout([-7], beta=16, f_bits=4))
    assert readout_trace(keep, spikes_at(3, 1, [(0, 0)])) == [-7, -7, -7]
    # beta = 0: (0 + 8) >> 4 = 0 -> only this step's current
    forget = model(1, readout([-7], beta=0, f_bits=4))
    assert readout_trace(forget, spikes_at(3, 1, [(0, 0)])) == [-7, 0, 0]


def test_clamp_at_both_ends():
    # v_bits=4: range -8..7. Two synapses of +7 -> 14 clamps to 7; two of -8 -> -16 -> -8.
    m = model(2, readout([[7, 7], [-8, -8]], v_bits=4, w_bits=4, beta=16))
    s = spikes_at(2, 2, [(0, 0), (0, 1), (1, 0), (1, 1)])
    out = golden.run(m, s)
    # t0: 7 and -8; t1: 7 + 14 -> 7 and -8 - 16 -> -8
    assert out.scores[0].tolist() == [14, -16]


def test_clamp_applies_before_threshold_and_reset():
    # v_bits=4 (max 7), threshold 5, subtract: input 7+7 -> u clamps to 7 -> spike, v = 2
    # next step no input: u = 2 -> no spike; with an unclamped u=14 it would have been 9 -> spike
    m = model(2, lif([[7, 7]], threshold=5, v_bits=4, w_bits=4),
              readout([[1]], w_bits=2))
    out = golden.run(m, spikes_at(2, 2, [(0, 0), (0, 1)]))
    assert out.spikes[0][0, :, 0].tolist() == [1, 0]


@pytest.mark.parametrize("reset, expected", [("subtract", [1, 1, 0]), ("zero", [1, 0, 0])])
def test_reset_kinds(reset, expected):
    # threshold 5, no leak; inputs 7 at t0, 3 at t1.
    # subtract: t0 u=7 spike v=2; t1 u=2+3=5 spike v=0; t2 u=0
    # zero:     t0 u=7 spike v=0; t1 u=3 no spike;    t2 u=3 no spike
    m = model(2, lif([[7, 3]], threshold=5, reset=reset), readout([[1]], w_bits=2))
    out = golden.run(m, spikes_at(3, 2, [(0, 0), (1, 1)]))
    assert out.spikes[0][0, :, 0].tolist() == expected


def test_delay_zero_passes_through_every_layer_in_one_step():
    # in -> A (d=0) -> B (d=0) -> readout (d=0): one input spike at t=0 reaches the readout at t=0
    # (zero reset, so each fires once)
    m = model(1, lif([[10]], threshold=1, reset="zero", name="a"),
              lif([[10]], threshold=1, reset="zero", name="b"),
              readout([[1]], w_bits=2))
    out = golden.run(m, spikes_at(3, 1, [(0, 0)]))
    assert out.spikes[0][0, :, 0].tolist() == [1, 0, 0]
    assert out.spikes[1][0, :, 0].tolist() == [1, 0, 0]
    # readout, no leak: v = 1, 1, 1
    assert out.scores[0].tolist() == [3]


def test_delay_d_max_255_and_no_spikes_before_time_zero():
    m = model(1, lif([[10]], [[255]], threshold=1, reset="zero"), readout([[1]], w_bits=2))
    out = golden.run(m, spikes_at(257, 1, [(0, 0)]))
    train = out.spikes[0][0, :, 0]
    assert train.sum() == 1 and train[255] == 1


def test_delays_select_the_past_input_per_synapse():
    # two synapses from the same channel with delays 1 and 3: unit 0 fires at t=1, unit 1 at t=3
    m = model(1, lif([[10], [10]], [[1], [3]], threshold=1, reset="zero"), readout([[1, 1]], w_bits=2))
    out = golden.run(m, spikes_at(5, 1, [(0, 0)]))
    assert out.spikes[0][0].T.tolist() == [[0, 1, 0, 0, 0], [0, 0, 0, 1, 0]]


@pytest.mark.parametrize("d_rec, expected", [(1, [1, 1, 1, 1, 1, 1, 1]),
                                             (3, [1, 0, 0, 1, 0, 0, 1])])
def test_recurrent_delays(d_rec, expected):
    # one unit exciting itself with delay d_rec, zero reset, no leak: a spike at t0 re-triggers
    # itself every d_rec steps
    m = model(1, lif([[10]], threshold=5, reset="zero", beta=0, w_rec=[[10]], d_rec=[[d_rec]]),
              readout([[1]], w_bits=2))
    out = golden.run(m, spikes_at(7, 1, [(0, 0)]))
    assert out.spikes[0][0, :, 0].tolist() == expected


def test_recurrent_sees_the_previous_step_not_the_current_one():
    # unit 1 fires at t0 from the input; unit 0 listens to unit 1 recurrently with delay 1 only
    m = model(1, lif([[0], [10]], threshold=5, reset="zero", beta=0,
                     w_rec=[[0, 10], [0, 0]], d_rec=[[1, 1], [1, 1]]),
              readout([[1, 1]], w_bits=2))
    out = golden.run(m, spikes_at(3, 1, [(0, 0)]))
    assert out.spikes[0][0].T.tolist() == [[0, 1, 0], [1, 0, 0]]


def test_bias_is_added_every_step():
    # no synapses, bias 3, beta 0: v = 3 each step -> scores 3*T
    m = model(1, readout([[0]], beta=0, bias=[3]))
    assert golden.run(m, spikes_at(5, 1, [])).scores[0].tolist() == [15]
    # with no leak it integrates: 3, 6, 9 -> 18
    m = model(1, readout([[0]], beta=16, bias=[3]))
    assert golden.run(m, spikes_at(3, 1, [])).scores[0].tolist() == [18]


def test_argmax_ties_go_to_the_lowest_index():
    # bias-only readout: scores = bias * T
    m = model(1, readout([[0]] * 4, beta=0, bias=[1, 5, 5, 2]))
    out = golden.run(m, spikes_at(2, 1, []))
    assert out.scores[0].tolist() == [2, 10, 10, 4]
    assert out.predictions.tolist() == [1]
    m = model(1, readout([[0]] * 3, beta=0, bias=[0, 0, 0]))
    assert golden.run(m, spikes_at(2, 1, [])).predictions.tolist() == [0]


def test_each_sample_starts_from_zero():
    # the same sample twice in a batch gives the same result: no state leaks between samples
    m = model(1, lif([[10]], [[2]], threshold=5, w_rec=[[7]], d_rec=[[1]]), readout([[3]]))
    s = spikes_at(6, 1, [(0, 0), (3, 0)])
    out = golden.run(m, np.concatenate([s, s]))
    assert out.scores[0].tolist() == out.scores[1].tolist()
    assert (out.spikes[0][0] == out.spikes[0][1]).all()


def test_run_rejects_wrong_input_shape_and_values():
    m = model(2, readout([[1, 1]]))
    with pytest.raises(DelayhwError, match="n_inputs=2"):
        golden.run(m, np.zeros((1, 3, 3), dtype=np.uint8))
    with pytest.raises(DelayhwError, match="0 or 1"):
        golden.run(m, np.full((1, 3, 2), 2, dtype=np.uint8))
    with pytest.raises(DelayhwError, match=r"\(B, T, n_inputs\)"):
        golden.run(m, np.zeros((3, 2), dtype=np.uint8))
