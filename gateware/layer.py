"""Layer engines: the per-layer datapath behind one interface, one class per delay scheme.

A core runs its layers one after another each time step. Every engine has the same
signature (:class:`LayerEngine`), so a delay scheme is a swappable component:

* ``mode``/``start``/``idle``: pulse ``start`` with a :class:`Mode`; ``idle`` goes low on the
  next cycle and high again when the work is finished.
* ``parity``: ``t mod 2`` of the current step (recurrent layers double-buffer their spikes).
* ``src``: reads the presynaptic spikes of this step (the previous layer's ``spikes`` or the
  core's input bitmap): ``addr``/``en`` now, ``data`` one cycle later. ``last`` marks reads
  of the final pass over the source in this step (the input bitmap clears those bits).
* ``spikes``: the same kind of port, served: this layer's spikes of the current step.
* ``emit``: a stream of :data:`EMIT_LAYOUT` items (spike words, scores). Back-pressure
  stalls the whole engine; nothing is dropped.
* ``cfg``: a configuration write (``en`` for one cycle); ``bad`` says, combinationally, that
  the presented write is invalid for this layer and will be ignored.

An *event-driven* engine (``event_driven = True``, e.g. the ``ring`` scheme) reads its
presynaptic spikes as a list instead of a bitmap, and serves its own spikes the same way:

* ``src_events``: the source's list of this step (the previous layer's ``events`` or the
  core's input event list): ``count`` entries; entry ``addr`` appears on ``data`` one cycle
  later (the read is always enabled). An entry (:func:`event_layout`) is a group of
  ``lanes`` units and the mask of those that spiked (never empty).
* ``events``: the same kind of port, served: this layer's spikes of its latest step.
* It still drives ``src.addr``/``en``/``last`` once per source spike it consumed, so the
  core's input bitmap (which drops repeated input events within a step) is cleared.
"""

from __future__ import annotations

from enum import IntEnum

import numpy as np
from amaranth import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from delayhw.spec import Layer

from .lif import LifUnit
from .shape import (CONFIG_DATA_BITS, INDEX_BITS, Field, LayerShape, OutKind,
                    Param, memory_depth)


class Mode(IntEnum):
    RUN = 0      #: process one time step
    CLEAR = 1    #: zero all state (membranes, delay lines, spikes, scores)
    SCORES = 2   #: emit the readout scores (readout layers only)


def emit_layout(lanes: int, score_bits: int) -> data.StructLayout:
    """An engine's output item: a spike word (bit ``l`` = unit ``unit + l``) or one score
    (``score_bits``: :attr:`CoreShape.score_bits`)."""
    return data.StructLayout({"kind": 2, "unit": INDEX_BITS, "bits": lanes,
                              "value": signed(score_bits)})


class SourcePort(wiring.Signature):
    """Reader's view of a spike source: bit ``addr`` of this step, ``data`` a cycle later."""

    def __init__(self):
        super().__init__({"addr": Out(INDEX_BITS), "en": Out(1), "last": Out(1), "data": In(1)})


def event_layout(lanes: int) -> data.StructLayout:
    """An entry of a spike-event list: units ``group * lanes + l`` for each set bit ``l``."""
    return data.StructLayout({"mask": lanes,
                              "group": INDEX_BITS - (lanes - 1).bit_length()})


class EventPort(wiring.Signature):
    """Reader's view of a spike-event list: ``count`` entries; entry ``addr`` on ``data`` a
    cycle later."""

    def __init__(self, lanes: int):
        super().__init__({"count": In(INDEX_BITS + 1), "addr": Out(INDEX_BITS),
                          "data": In(event_layout(lanes))})


class ConfigPort(wiring.Signature):
    def __init__(self):
        super().__init__({"en": In(1), "field": In(3), "row": In(INDEX_BITS),
                          "col": In(INDEX_BITS), "data": In(signed(CONFIG_DATA_BITS)),
                          "bad": Out(1)})


class LayerEngine(wiring.Component):
    """The interface every delay scheme implements (see the module docstring). A readout
    engine keeps its scores in ``score_bits`` (the core's :attr:`CoreShape.score_bits`: exact
    for the core's ``max_steps``; wrapping beyond, which the core flags)."""

    #: reads spike-event lists (``src_events``/``events``) instead of bitmaps
    event_driven = False

    def __init__(self, shape: LayerShape, lanes: int, contents: Layer | None = None, *,
                 score_bits: int):
        self.shape = shape
        self.lanes = lanes
        self.contents = contents
        self.score_bits = score_bits
        members = {
            "mode": In(2), "start": In(1), "idle": Out(1), "parity": In(1),
            "src": Out(SourcePort()),
            "spikes": In(SourcePort()),
            "emit": Out(stream.Signature(emit_layout(lanes, score_bits))),
            "cfg": In(ConfigPort()),
        }
        if self.event_driven:
            members.update(src_events=Out(EventPort(lanes)), events=In(EventPort(lanes)))
        super().__init__(members)

    def _param_registers(self):
        """``beta``, ``threshold``, ``reset_zero``: the run-time parameters, initialised from
        the model (if any) and kept across reset (only configuration writes change them)."""
        s, c = self.shape, self.contents
        beta = Signal(unsigned(s.f_bits + 1), init=c.beta if c else 0, reset_less=True)
        threshold = Signal(signed(s.v_bits), init=(c.threshold or 1) if c else 1, reset_less=True)
        reset_zero = Signal(init=int(c.reset == "zero") if c else 0, reset_less=True)
        return beta, threshold, reset_zero

    def _score_walk(self, m, group, lane, scoring, score_read, sc_rd) -> None:
        """The readout's SCORES states (inside the caller's FSM): read a group's scores, emit
        them one unit at a time through ``emit``, then ``IDLE``. ``group``/``lane`` start at 0."""
        s, lanes, emit = self.shape, self.lanes, self.emit
        groups = s.groups(lanes)
        with m.State("SCORE_READ"):
            m.d.comb += [scoring.eq(1), score_read.eq(1)]
            m.next = "SCORE_EMIT"
        with m.State("SCORE_EMIT"):
            m.d.comb += scoring.eq(1)
            unit = group * lanes + lane
            with m.If(~emit.valid | emit.ready):
                m.d.sync += [emit.valid.eq(1), emit.payload.kind.eq(OutKind.SCORE),
                             emit.payload.unit.eq(unit),
                             emit.payload.value.eq(sc_rd.data[lane])]
                with m.If((lane == lanes - 1) | (unit == s.size - 1)):
                    m.d.sync += [lane.eq(0), group.eq(group + 1)]
                    with m.If(group == groups - 1):
                        m.next = "SCORE_DRAIN"
                    with m.Else():
                        m.next = "SCORE_READ"
                with m.Else():
                    m.d.sync += lane.eq(lane + 1)
        with m.State("SCORE_DRAIN"):
            m.d.comb += scoring.eq(1)
            with m.If(~emit.valid | emit.ready):
                m.next = "IDLE"

    def _elaborate_config(self, m, w_wr, d_wr, b_wr, beta, threshold, reset_zero, groups,
                          lane_bits):
        """The configuration port of every scheme: ``cfg.bad`` checks the presented write
        (field, row/column, value range) combinationally; a good write reaches the weight,
        delay and bias memories (row ``g * fan_in + i``, lane ``j mod lanes``) or the
        parameter registers one cycle later."""
        s, lanes, cfg = self.shape, self.lanes, self.cfg
        row_ok = cfg.row < s.size
        value = cfg.data
        # range checks as bit tests (shallow logic, unlike 32-bit comparators)
        def upper_zero(bits: int):          # 0 <= value < 2**bits
            return value[bits:] == 0
        w_fits = (value[s.w_bits - 1:] == 0) | value[s.w_bits - 1:].all()
        d_fits = upper_zero(s.d_bits) & (value[:s.d_bits] <= s.d_max)
        beta_fits = upper_zero(s.f_bits + 1) & (~value[s.f_bits] | (value[:s.f_bits] == 0))
        ok = Signal()
        is_rec = (cfg.field == Field.W_REC) | (cfg.field == Field.D_REC)
        with m.Switch(cfg.field):
            with m.Case(Field.W):
                m.d.comb += ok.eq(row_ok & (cfg.col < s.n_in) & w_fits)
            with m.Case(Field.D):
                m.d.comb += ok.eq(row_ok & (cfg.col < s.n_in) & d_fits)
            if s.recurrent:
                with m.Case(Field.W_REC):
                    m.d.comb += ok.eq(row_ok & (cfg.col < s.size) & w_fits)
                with m.Case(Field.D_REC):
                    m.d.comb += ok.eq(row_ok & (cfg.col < s.size) & d_fits
                                      & (value[:s.d_bits] != 0))
            if s.bias:
                with m.Case(Field.BIAS):
                    m.d.comb += ok.eq(row_ok & (cfg.col == 0) & w_fits)
            with m.Case(Field.PARAM):
                with m.Switch(cfg.row):
                    with m.Case(Param.BETA):
                        m.d.comb += ok.eq((cfg.col == 0) & beta_fits)
                    if s.kind == "lif":
                        with m.Case(Param.THRESHOLD):     # 1..vmax
                            m.d.comb += ok.eq((cfg.col == 0) & upper_zero(s.v_bits - 1)
                                              & (value != 0))
                        with m.Case(Param.RESET):
                            m.d.comb += ok.eq((cfg.col == 0) & upper_zero(1))
        m.d.comb += cfg.bad.eq(~ok)

        # the write itself one cycle later, from registers (the checks above are long paths)
        write, field = Signal(), Signal.like(cfg.field)
        param, value_q = Signal.like(cfg.row), Signal.like(value)
        lane_onehot, group = Signal(lanes), Signal.like(cfg.row)
        syn_addr = Signal(range(max(2, s.groups(lanes) * s.fan_in)))
        m.d.sync += [write.eq(cfg.en & ok), field.eq(cfg.field), param.eq(cfg.row),
                     value_q.eq(value), group.eq(cfg.row >> lane_bits),
                     lane_onehot.eq(1 << (cfg.row[:lane_bits] if lane_bits else 0)),
                     syn_addr.eq((cfg.row >> lane_bits) * s.fan_in + cfg.col
                                 + Mux(is_rec, s.n_in, 0))]
        for port, fields in ((w_wr, (Field.W, Field.W_REC)), (d_wr, (Field.D, Field.D_REC))):
            hit = (field == fields[0]) | (field == fields[1])
            m.d.comb += [port.addr.eq(syn_addr), port.en.eq(Mux(write & hit, lane_onehot, 0))]
            for l in range(lanes):
                m.d.comb += port.data[l].eq(value_q)
        if b_wr is not None:
            m.d.comb += [b_wr.addr.eq(group), b_wr.en.eq(Mux(write & (field == Field.BIAS),
                                                             lane_onehot, 0))]
            for l in range(lanes):
                m.d.comb += b_wr.data[l].eq(value_q)
        with m.If(write & (field == Field.PARAM)):
            with m.Switch(param):
                with m.Case(Param.BETA):
                    m.d.sync += beta.eq(value_q)
                with m.Case(Param.THRESHOLD):
                    m.d.sync += threshold.eq(value_q)
                with m.Case(Param.RESET):
                    m.d.sync += reset_zero.eq(value_q)


def _rows(mat: np.ndarray, lanes: int, groups: int) -> np.ndarray:
    """Reorder a ``(size, n)`` matrix to ``(groups, n, lanes)``: row ``g*n + i`` of a memory
    holds the ``lanes`` units of group ``g`` for input ``i``."""
    size, n = mat.shape
    padded = np.zeros((groups * lanes, n), dtype=np.int64)
    padded[:size] = mat
    return padded.reshape(groups, lanes, n).transpose(0, 2, 1)


def synapse_init(layer, lanes: int, groups: int) -> tuple[list, list]:
    """Initial rows of the weight and delay memories: row ``g * fan_in + i`` holds the
    ``lanes`` targets of group ``g`` for source ``i`` (feedforward inputs, then recurrent
    units), the layout every scheme shares, so one configuration map serves all."""
    if layer is None:
        return [], []
    out = []
    for name in ("w", "d"):
        mats = [getattr(layer, name)]
        if layer.w_rec is not None:
            mats.append(getattr(layer, name + "_rec"))
        rows = np.concatenate([_rows(mat, lanes, groups) for mat in mats], axis=1)
        out.append(rows.reshape(-1, lanes).tolist())
    return out[0], out[1]


def unit_init(vec, lanes: int, groups: int) -> list:
    """Initial rows of a per-unit memory (``lanes`` units per row), or none."""
    if vec is None:
        return []
    padded = np.zeros(groups * lanes, dtype=np.int64)
    padded[:len(vec)] = vec
    return padded.reshape(groups, lanes).tolist()


class FifoLayer(LayerEngine):
    """The ``fifo`` delay scheme: a spike history of ``d_max`` past steps per source.

    Clock-driven: each step visits every synapse ``(j, i)`` once, ``lanes`` units at a time,
    one synapse per cycle per lane, in address order ``g * fan_in + i`` (units of group
    ``g``; feedforward inputs, then recurrent ones). The delay line a synapse would own holds
    the same bits for every synapse of one source ``i``, so it is kept once per source: row
    ``i`` of the history memory, ``H_i``, holds source i's spikes of past steps, newest in
    bit 0. With ``new`` source i's spike entering this step (this step's for feedforward,
    the previous step's for recurrent sources, so ``lag`` is 0 or 1)::

        full = {H_i, new}          # bit m = s_i(t - lag - m): d_max + 1 steps
        tap  = full[D[j,i] - lag]  # = s_i(t - D[j,i]), each lane with its own D
        H_i <= full[0:d_max]       # written once per step, on the last group's pass

    All lanes read the same row (they sweep the same source), so the history costs
    ``fan_in x d_max`` bits per layer whatever the lane count, written as whole rows (no
    bit-granular writes in block RAM).

    Pipeline: issue (addresses) -> taps (history shift written back) -> sums -> neuron
    (:class:`LifUnit` per lane, ``LifUnit.latency`` stages) -> write-back (membrane, score,
    spike word) -> emit register. Any stall of ``emit`` freezes every stage (memory reads
    hold, writes wait, the LIF units' ``en`` drops).
    """

    def elaborate(self, platform):
        m = Module()
        s, lanes = self.shape, self.lanes
        groups, fan_in = s.groups(lanes), s.fan_in
        depth = groups * fan_in
        lane_bits = (lanes - 1).bit_length()
        is_lif = s.kind == "lif"
        banks = 2 if s.recurrent else 1
        c = self.contents

        # ------------------------------------------------------------------ memories
        w_init, d_init = synapse_init(c, lanes, groups)

        #: every memory of this engine, by the kinds of :meth:`CoreShape.memory_bits`
        self.memories = {}

        def add_memory(kind: str, shape, rows: int, init=()) -> memory.Memory:
            mem = memory.Memory(shape=shape, depth=memory_depth(rows), init=init)
            m.submodules[kind] = self.memories[kind] = mem
            return mem

        w_mem = add_memory("weights", data.ArrayLayout(signed(s.w_bits), lanes), depth,
                           w_init)
        d_mem = add_memory("delays", data.ArrayLayout(unsigned(s.d_bits), lanes), depth,
                           d_init)
        v_mem = add_memory("membranes", data.ArrayLayout(signed(s.v_bits), lanes), groups)
        w_rd, w_wr = w_mem.read_port(), w_mem.write_port(granularity=1)
        d_rd, d_wr = d_mem.read_port(), d_mem.write_port(granularity=1)
        v_rd, v_wr = v_mem.read_port(), v_mem.write_port()
        if s.d_max:     # one spike history per source (input, then recurrent unit)
            h_mem = add_memory("delay_lines", unsigned(s.d_max), fan_in)
            h_rd, h_wr = h_mem.read_port(), h_mem.write_port()
        if s.bias:
            b_mem = add_memory("bias", data.ArrayLayout(signed(s.w_bits), lanes), groups,
                               unit_init(c.bias if c is not None else None, lanes, groups))
            b_rd, b_wr = b_mem.read_port(), b_mem.write_port(granularity=1)
        if is_lif:
            s_mem = add_memory("spike_bitmaps", unsigned(lanes), banks * groups)
            s_wr, s_out, s_rec = s_mem.write_port(), s_mem.read_port(), s_mem.read_port()
        else:
            sc_mem = add_memory("scores", data.ArrayLayout(signed(self.score_bits), lanes),
                                groups)
            sc_rd, sc_wr = sc_mem.read_port(), sc_mem.write_port()

        # run-time parameters (configuration survives reset)
        beta, threshold, reset_zero = self._param_registers()

        cur_bank = self.parity if s.recurrent else Const(0)
        prev_bank = ~self.parity

        # ------------------------------------------------------------------ control
        emit = self.emit
        advance = Signal()
        m.d.comb += advance.eq(~emit.valid | emit.ready)

        # synapse address / clear counter
        addr0 = Signal(range(max(depth, banks * groups, fan_in) + 1))
        i0 = Signal(range(fan_in + 1))
        g0 = Signal(range(groups + 1))
        issuing = Signal()
        v1, last1, first1, rec1, commit1 = Signal(), Signal(), Signal(), Signal(), Signal()
        i1 = Signal.like(i0)
        g1 = Signal.like(g0)
        recsel1 = Signal(max(1, lane_bits))
        v2, last2, first2 = Signal(), Signal(), Signal()
        g2 = Signal.like(g0)
        added = [Signal(signed(s.w_bits), name=f"added{l}") for l in range(lanes)]  # w or 0
        v3 = Signal()                   # group g3's sums enter the LIF units
        g3 = Signal.like(g0)
        # the LIF pipeline: stage n holds group ng[n]'s update; ng[-1] is written back
        nv = [v3] + [Signal(name=f"nv{n + 1}") for n in range(LifUnit.latency)]
        ng = [g3] + [Signal.like(g0, name=f"ng{n + 1}") for n in range(LifUnit.latency)]
        vw, gw = nv[-1], ng[-1]
        v_emit = Signal()               # the emit register holds group gw's result
        # running sums; stage 4 reads them the cycle after a group's last synapse
        acc = [Signal(signed(s.acc_bits), name=f"acc{l}") for l in range(lanes)]
        clearing = Signal()
        lane = Signal(range(lanes + 1))       # score walk

        # ------------------------------------------------------------------ stage 0: issue
        is_rec0 = Signal()
        m.d.comb += is_rec0.eq(i0 >= s.n_in)
        for port in (w_rd, d_rd):
            m.d.comb += [port.addr.eq(addr0), port.en.eq(advance)]
        if s.d_max:
            m.d.comb += [h_rd.addr.eq(i0), h_rd.en.eq(advance)]
        m.d.comb += [
            self.src.addr.eq(i0),
            self.src.en.eq(advance & issuing & ~is_rec0),
            self.src.last.eq(g0 == groups - 1),
        ]
        if s.recurrent:
            rec_index = Signal(INDEX_BITS)
            m.d.comb += [rec_index.eq(i0 - s.n_in),
                         s_rec.addr.eq(prev_bank * groups + (rec_index >> lane_bits)),
                         s_rec.en.eq(advance)]
        with m.If(advance):
            m.d.sync += [v1.eq(issuing), last1.eq(i0 == fan_in - 1), first1.eq(i0 == 0),
                         rec1.eq(is_rec0), i1.eq(i0), g1.eq(g0), commit1.eq(g0 == groups - 1)]
            if s.recurrent and lane_bits:
                m.d.sync += recsel1.eq(rec_index[:lane_bits])
            with m.If(issuing):
                m.d.sync += addr0.eq(addr0 + 1)
                with m.If(i0 == fan_in - 1):
                    m.d.sync += [i0.eq(0), g0.eq(g0 + 1)]
                    with m.If(g0 == groups - 1):
                        m.d.sync += issuing.eq(0)
                with m.Else():
                    m.d.sync += i0.eq(i0 + 1)

        # ------------------------------------------------------------------ stage 1: fetch
        # memory outputs into flip-flops (a block RAM's clock-to-output is most of a cycle)
        new_bit = Signal()
        if s.recurrent:
            m.d.comb += new_bit.eq(Mux(rec1, s_rec.data.bit_select(recsel1, 1) if lane_bits
                                       else s_rec.data[0], self.src.data))
        else:
            m.d.comb += new_bit.eq(self.src.data)
        v_q, last_q, first_q, rec_q, commit_q, new_q = (Signal(name=n) for n in (
            "v_q", "last_q", "first_q", "rec_q", "commit_q", "new_q"))
        i_q, g_q = Signal.like(i1), Signal.like(g1)
        w_q, d_q = Signal.like(w_rd.data), Signal.like(d_rd.data)
        h_q = Signal(max(1, s.d_max))
        with m.If(advance):
            m.d.sync += [v_q.eq(v1), last_q.eq(last1), first_q.eq(first1), rec_q.eq(rec1),
                         commit_q.eq(commit1), new_q.eq(new_bit), i_q.eq(i1), g_q.eq(g1),
                         w_q.eq(w_rd.data), d_q.eq(d_rd.data)]
            if s.d_max:
                m.d.sync += h_q.eq(h_rd.data)

        # ------------------------------------------------------------------ stage 2: taps
        line = Signal(s.d_max + 1)          # bit m = s(t - lag - m) of source i_q
        taps = Signal(s.d_max + 1)          # bit m = s(t - m): recurrent lines shifted by lag 1
        m.d.comb += [line.eq(Cat(new_q, h_q) if s.d_max else new_q),
                     taps.eq(Mux(rec_q, line << 1, line) if s.d_max else line)]
        for l in range(lanes):
            tap = Signal(name=f"tap{l}")
            m.d.comb += tap.eq(taps.bit_select(d_q[l], 1) if s.d_max else new_q)
            with m.If(advance):
                m.d.sync += added[l].eq(Mux(tap, w_q[l], 0))
        if s.d_max:     # the last group's pass shifts this step's spike into each history
            m.d.comb += [h_wr.data.eq(Mux(clearing, 0, line[:s.d_max])),
                         h_wr.addr.eq(Mux(clearing, addr0, i_q)),
                         h_wr.en.eq(Mux(clearing, addr0 < fan_in, v_q & commit_q & advance))]
        with m.If(advance):
            m.d.sync += [v2.eq(v_q), last2.eq(last_q), first2.eq(first_q), g2.eq(g_q)]

        # ------------------------------------------------------------------ stage 3: sums
        for l in range(lanes):
            with m.If(advance):
                m.d.sync += acc[l].eq(Mux(first2, 0, acc[l]) + added[l])
        for port in [v_rd] + ([b_rd] if s.bias else []):
            m.d.comb += [port.addr.eq(g2), port.en.eq(advance)]
        if not is_lif:
            scoring, score_read = Signal(), Signal()      # driven by the SCORE_* states
            # the old score of group ng[-2] is read into score_q as it moves to ng[-1]
            score_q = Signal.like(sc_rd.data)
            m.d.comb += [sc_rd.addr.eq(Mux(scoring, g0, ng[-3])),
                         sc_rd.en.eq(Mux(scoring, score_read, advance))]
            with m.If(advance):
                m.d.sync += score_q.eq(sc_rd.data)
        with m.If(advance):
            m.d.sync += [v3.eq(v2 & last2), g3.eq(g2)]
            m.d.sync += [a.eq(b) for a, b in zip(nv[1:] + ng[1:], nv[:-1] + ng[:-1])]

        # ------------------------------------------------------------------ stage 4: neurons
        spike_bits = Signal(lanes)
        last_mask = (1 << (s.size - (groups - 1) * lanes)) - 1
        lane_mask = Mux(gw == groups - 1, last_mask, (1 << lanes) - 1)
        for l in range(lanes):
            m.submodules[f"lif{l}"] = lif = LifUnit(s)
            m.d.comb += [lif.en.eq(advance), lif.v.eq(v_rd.data[l]), lif.i_syn.eq(acc[l]),
                         lif.bias.eq(b_rd.data[l] if s.bias else 0), lif.beta.eq(beta),
                         lif.threshold.eq(threshold), lif.reset_zero.eq(reset_zero),
                         v_wr.data[l].eq(Mux(clearing, 0, lif.v_next)),
                         spike_bits[l].eq(lif.spike)]
            if not is_lif:
                m.d.comb += sc_wr.data[l].eq(Mux(clearing, 0, score_q[l] + lif.v_next))
        neuron_writes = [v_wr] + ([] if is_lif else [sc_wr])
        for port in neuron_writes:
            m.d.comb += [port.addr.eq(Mux(clearing, addr0, gw)),
                         port.en.eq(Mux(clearing, addr0 < groups, vw & advance))]
        if is_lif:
            word = Signal(lanes)
            m.d.comb += [word.eq(spike_bits & lane_mask),
                         s_wr.addr.eq(Mux(clearing, addr0, cur_bank * groups + gw)),
                         s_wr.data.eq(Mux(clearing, 0, word)),
                         s_wr.en.eq(Mux(clearing, addr0 < banks * groups, vw & advance))]

        # ------------------------------------------------------------------ emit register
        with m.If(advance):
            m.d.sync += v_emit.eq(vw)
        with m.If(emit.valid & emit.ready):
            m.d.sync += emit.valid.eq(0)
        if is_lif:
            with m.If(advance & vw & (word != 0)):
                m.d.sync += [emit.valid.eq(1), emit.payload.kind.eq(OutKind.SPIKE),
                             emit.payload.unit.eq(gw * lanes), emit.payload.bits.eq(word)]

        # ------------------------------------------------------------------ served spikes
        if is_lif:
            sel = Signal(max(1, lane_bits))
            m.d.comb += [s_out.addr.eq(cur_bank * groups + (self.spikes.addr >> lane_bits)),
                         s_out.en.eq(self.spikes.en)]
            if lane_bits:
                with m.If(self.spikes.en):
                    m.d.sync += sel.eq(self.spikes.addr[:lane_bits])
                m.d.comb += self.spikes.data.eq(s_out.data.bit_select(sel, 1))
            else:
                m.d.comb += self.spikes.data.eq(s_out.data[0])

        # ------------------------------------------------------------------ modes
        clear_end = max(depth, banks * groups if is_lif else groups)
        with m.FSM(name="engine"):
            with m.State("IDLE"):
                m.d.comb += self.idle.eq(1)
                with m.If(self.start):
                    m.d.sync += addr0.eq(0)
                    with m.Switch(self.mode):
                        with m.Case(Mode.RUN):
                            m.d.sync += [issuing.eq(1), i0.eq(0), g0.eq(0)]
                            m.next = "RUN"
                        with m.Case(Mode.CLEAR):
                            m.next = "CLEAR"
                        with m.Case(Mode.SCORES):
                            if not is_lif:
                                m.d.sync += [g0.eq(0), lane.eq(0)]
                                m.next = "SCORE_READ"
            with m.State("RUN"):
                with m.If(~issuing & ~v1 & ~v_q & ~v2 & ~v_emit & ~emit.valid & ~Cat(*nv).any()):
                    m.next = "IDLE"
            with m.State("CLEAR"):
                m.d.comb += clearing.eq(1)
                m.d.sync += addr0.eq(addr0 + 1)
                with m.If(addr0 == clear_end - 1):
                    m.next = "IDLE"
            if not is_lif:
                self._score_walk(m, g0, lane, scoring, score_read, sc_rd)

        # ------------------------------------------------------------------ configuration
        self._elaborate_config(m, w_wr, d_wr, b_wr if s.bias else None, beta, threshold,
                               reset_zero, groups, lane_bits)
        return m


from .ring import RingLayer  # noqa: E402  (ring.py builds on the interface above)

#: The delay schemes, by name (``CoreShape.scheme``).
SCHEME_ENGINES = {"fifo": FifoLayer, "ring": RingLayer}
