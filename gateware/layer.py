"""Layer engines: the per-layer datapath behind one interface, one class per delay scheme.

A core runs every layer once each time step, in layer order as far as the data go (an
engine with ``overlaps`` starts with the layer below it and waits for its spikes). Every
engine has the same signature (:class:`LayerEngine`), so a delay scheme is a swappable component:

* ``mode``/``start``/``idle``: pulse ``start`` with a :class:`Mode`; ``idle`` goes low on the
  next cycle and high again when the work is finished.
* ``parity``: ``t mod 2`` of the current step (recurrent layers double-buffer their spikes).
* ``src``: reads the presynaptic spikes of this step (the previous layer's ``spikes`` or the
  core's input bitmap): ``addr``/``en`` now, ``data`` one cycle later. ``last`` marks reads
  of the final pass over the source in this step (the input bitmap clears those bits).
  ``ready`` says, in the same cycle as ``addr``, that bit ``addr`` already holds this
  step's spike (the input bitmap: always).
* ``spikes``: the same kind of port, served: this layer's spikes of the current step.
* An engine with ``overlaps = True`` may be started together with the layer that feeds
  it: it reads a source bit only while ``src.ready``, and serves ``spikes.ready`` from the
  groups it has written in this step. The core then starts every layer of a step at once
  and arbitrates ``emit`` (lower layer first), so each layer's pipeline drain overlaps the
  next layer's sweep.
* ``emit``: a stream of :func:`emit_layout` items (spike words, scores). Back-pressure
  stalls the whole engine; nothing is dropped.
* ``cfg``: a configuration write (``en`` for one cycle), applied :data:`CONFIG_LATENCY`
  cycles later; ``bad`` says in that cycle whether it was invalid for this layer (then it
  is ignored).

An *event-driven* engine (``event_driven = True``, e.g. the ``ring`` scheme) reads its
presynaptic spikes as a list instead of a bitmap, and serves its own spikes the same way:

* ``src_events``: the source's list of this step (the previous layer's ``events`` or the
  core's input event list): ``count`` entries so far; entry ``addr`` appears on ``data``
  one cycle later (the read is always enabled); ``final``: no entry will be added in this
  step. An entry (:func:`event_layout`) is a group of ``lanes`` units and the mask of those
  that spiked (never empty). The list may grow while the reader runs (overlap): an entry
  counted in a cycle can be read from the next one. ``grew`` (a register, so a reader can
  tell a new entry without comparing counts): ``count`` is one more than in the cycle
  before, else it is the same (a list grows by at most one entry a cycle), in every cycle
  the reader is idle or walks the list, but the one after a start in which the source was
  not final (its count restarts then).
  ``reading`` (from the reader, a register): it walks the list, from the cycle after it
  starts until it is done. In the reader's start cycle the source shows this step's list
  (complete, or as it starts: empty); in the other cycles it is not reading, another
  (the next step's, or an empty one).
* ``events``: the same kind of port, served: this layer's spikes of the reader's step
  (``half``: its parity). The layer may have gone on to the next step (the core's step
  pipeline): it then serves the previous step's list, complete (``final``).
* ``hold`` (in): the neuron pass must not start (the core holds a layer that is a step
  ahead of the top layer, so the outputs stay in step order).
* It still drives ``src.addr``/``en``/``last`` once per source spike it consumed, so the
  core's input bitmap (which drops repeated input events within a step) is cleared.
"""

from __future__ import annotations

import numpy as np
from amaranth import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, enum, stream, wiring
from amaranth.lib.wiring import In, Out

from delayhw.spec import Layer, LayerKind, LayerShape, Reset

from .lif import LifUnit
from .memories import KindMemory, SynapseMemory
from .shape import memory_depth
from .wire import CONFIG_DATA_BITS, FIELD_BITS, INDEX_BITS, KIND_BITS, Field, OutKind, Param


#: cycles from an engine's ``cfg.en`` to the cycle it applies the write and drives ``cfg.bad``
CONFIG_LATENCY = 2


class Mode(enum.Enum, shape=2):
    """What an engine does when started (its ``mode`` port)."""
    RUN = 0      #: process one time step
    CLEAR = 1    #: zero all state (membranes, delay lines, spikes, scores)
    SCORES = 2   #: emit the readout scores (readout layers only)


def lowest_set_bit(m: Module, bits, index: Signal) -> None:
    """``index`` is the position of the lowest set bit of ``bits`` (0 when none is set): a
    priority encoder, as the spike serializer and the ring's list walk take a spike word's
    lanes lowest first."""
    for l in reversed(range(len(bits))):
        with m.If(bits[l]):
            m.d.comb += index.eq(l)


def emit_layout(lanes: int, score_bits: int) -> data.StructLayout:
    """An engine's output item: a spike word (bit ``l`` = unit ``unit + l``) or one score
    (``score_bits``: :attr:`CoreShape.score_bits`)."""
    return data.StructLayout({"kind": KIND_BITS, "unit": INDEX_BITS, "bits": lanes,
                              "value": signed(score_bits)})


class SourcePort(wiring.Signature):
    """Reader's view of a spike source: bit ``addr`` of this step, ``data`` a cycle later;
    ``ready`` (same cycle as ``addr``): that bit is already this step's."""

    def __init__(self):
        super().__init__({"addr": Out(INDEX_BITS), "en": Out(1), "last": Out(1), "data": In(1),
                          "ready": In(1)})


def event_layout(lanes: int) -> data.StructLayout:
    """An entry of a spike-event list: units ``group * lanes + l`` for each set bit ``l``."""
    return data.StructLayout({"mask": lanes,
                              "group": INDEX_BITS - (lanes - 1).bit_length()})


class EventPort(wiring.Signature):
    """Reader's view of a spike-event list: ``count`` entries so far (``grew``: one more
    than in the cycle before), ``final`` when no more will come this step; entry ``addr`` on
    ``data`` a cycle later; ``reading``: the reader walks it; ``half``: the parity of the
    reader's step (a layer's list is double-buffered: the layer above may still walk the
    list of step ``t`` while the layer writes that of ``t + 1``)."""

    def __init__(self, lanes: int):
        super().__init__({"count": In(INDEX_BITS + 1), "grew": In(1), "final": In(1),
                          "addr": Out(INDEX_BITS), "reading": Out(1), "half": Out(1),
                          "data": In(event_layout(lanes))})


class ConfigPort(wiring.Signature):
    def __init__(self):
        super().__init__({"en": In(1), "field": In(FIELD_BITS), "row": In(INDEX_BITS),
                          "col": In(INDEX_BITS), "data": In(signed(CONFIG_DATA_BITS)),
                          "bad": Out(1)})



class EngineMemories:
    """The memories every engine has, built by :meth:`LayerEngine._memories` (the scaffold):
    the synapse memory ``syn`` (:class:`SynapseMemory`), the membranes (``v_rd``/``v_wr``),
    the biases if any (``b_rd``/``b_wr``, else None) and a readout's scores
    (``sc_rd``/``sc_wr``, else None). :meth:`add` registers a scheme's own memories. Every
    memory is a :class:`KindMemory` of its kind of :meth:`CoreShape.memory_bits`."""

    def __init__(self, m: Module):
        self.m = m
        self.b_rd = self.b_wr = self.sc_rd = self.sc_wr = None

    def add(self, kind: str, shape, rows: int, init=(), attrs=None, name=None) -> KindMemory:
        """A memory of ``rows`` rows (at least 2), submodule ``name`` (default ``kind``)."""
        mem = KindMemory(kind, shape=shape, depth=memory_depth(rows), init=init, attrs=attrs)
        self.m.submodules[name or kind] = mem
        return mem


class LayerEngine(wiring.Component):
    """The interface every delay scheme implements (see the module docstring). A readout
    engine keeps its scores in ``score_bits`` (the core's :attr:`CoreShape.score_bits`: exact
    for the core's ``max_steps``; wrapping beyond, which the core flags)."""

    #: reads spike-event lists (``src_events``/``events``) instead of bitmaps
    event_driven = False
    #: may start with the layer that feeds it (waits on ``src.ready``, serves ``spikes.ready``)
    overlaps = False

    def __init__(self, shape: LayerShape, lanes: int, contents: Layer | None = None, *,
                 score_bits: int, synapse_spram: bool = False):
        self.shape = shape
        #: weights/delays in iCE40 SPRAM (empty at power-up) instead of block RAM
        self.synapse_spram = synapse_spram
        self.lanes = lanes
        self.contents = contents
        self.score_bits = score_bits
        members = {
            "mode": In(Mode), "start": In(1), "idle": Out(1), "parity": In(1),
            "src": Out(SourcePort()),
            "spikes": In(SourcePort()),
            "emit": Out(stream.Signature(emit_layout(lanes, score_bits))),
            "cfg": In(ConfigPort()),
        }
        if self.event_driven:
            members.update(src_events=Out(EventPort(lanes)), events=In(EventPort(lanes)),
                           hold=In(1))
        super().__init__(members)

    # ------------------------------------------------------------------ the shared scaffold

    def _memories(self, m: Module, before_units=None) -> EngineMemories:
        """The memories every scheme has: weights and delays packed in one single-port memory
        (SPRAM on iCE40 if chosen; read in sequence during a step, written only by
        configuration while idle), membranes, biases, scores. ``before_units(mems)`` adds the
        scheme's memories that come before the per-unit ones."""
        s, lanes, c = self.shape, self.lanes, self.contents
        groups = s.groups(lanes)
        mems = EngineMemories(m)
        w_init, d_init = synapse_init(c, lanes, groups)
        m.submodules.synapses = mems.syn = SynapseMemory(
            w_bits=s.w_bits, d_bits=s.d_bits, lanes=lanes,
            depth=memory_depth(groups * s.fan_in), w_init=w_init, d_init=d_init,
            spram=self.synapse_spram)
        if before_units is not None:
            before_units(mems)
        v_mem = mems.add("membranes", data.ArrayLayout(signed(s.v_bits), lanes), groups)
        mems.v_rd, mems.v_wr = v_mem.read_port(), v_mem.write_port()
        return mems

    def _unit_memories(self, mems: EngineMemories) -> None:
        """The biases (if the layer has them) and a readout's scores."""
        s, lanes, c = self.shape, self.lanes, self.contents
        groups = s.groups(lanes)
        if s.bias:
            b_mem = mems.add("bias", data.ArrayLayout(signed(s.w_bits), lanes), groups,
                             unit_init(c.bias if c is not None else None, lanes, groups))
            mems.b_rd, mems.b_wr = b_mem.read_port(), b_mem.write_port(granularity=1)
        if s.kind is LayerKind.READOUT:
            sc_mem = mems.add("scores", data.ArrayLayout(signed(self.score_bits), lanes),
                              groups)
            mems.sc_rd, mems.sc_wr = sc_mem.read_port(), sc_mem.write_port()

    def _lif_lanes(self, m: Module, mems: EngineMemories, *, en, i_syn, clearing, params,
                   old_scores=None) -> Signal:
        """One :class:`LifUnit` per lane (submodules ``lif{l}``), fed the membranes and
        biases read (``mems``) and the lane's current ``i_syn[l]``, writing the next
        membrane (0 while ``clearing``) and, for a readout, the score ``old_scores[l] +
        v_next``. Returns the lanes' spike bits."""
        spike_bits = Signal(self.lanes)
        beta, threshold, reset_zero = params
        for l in range(self.lanes):
            m.submodules[f"lif{l}"] = lif = LifUnit(self.shape)
            m.d.comb += [lif.en.eq(en), lif.v.eq(mems.v_rd.data[l]), lif.i_syn.eq(i_syn[l]),
                         lif.bias.eq(mems.b_rd.data[l] if mems.b_rd is not None else 0),
                         lif.beta.eq(beta), lif.threshold.eq(threshold),
                         lif.reset_zero.eq(reset_zero),
                         mems.v_wr.data[l].eq(Mux(clearing, 0, lif.v_next)),
                         spike_bits[l].eq(lif.spike)]
            if mems.sc_wr is not None:
                m.d.comb += mems.sc_wr.data[l].eq(Mux(clearing, 0, old_scores[l] + lif.v_next))
        return spike_bits

    def _lane_mask(self, group):
        """The lanes of ``group`` that hold units (all but in a partial last group)."""
        s, lanes = self.shape, self.lanes
        groups = s.groups(lanes)
        last_mask = (1 << (s.size - (groups - 1) * lanes)) - 1
        return Mux(group == groups - 1, last_mask, (1 << lanes) - 1)

    def _modes(self, m: Module, *, counter, clear_rows: int, clearing, on_run, run_states,
               clear_register: bool = False, on_clear=(), score=None) -> None:
        """The engine's state machine: ``IDLE`` (``idle`` high) until ``start``, then by
        ``mode``: RUN (``on_run()`` makes its statements and returns the first run state;
        ``run_states()`` builds the run states, which return to ``IDLE``), CLEAR (``counter``
        walks ``clear_rows`` rows with ``clearing`` high: a register set on entry if
        ``clear_register``, else combinational; ``on_clear`` each cycle) or SCORES (the score
        walk, readout only: ``score`` = ``(group, lane, scoring, score_read, sc_rd)``).
        ``counter`` is zeroed at every start."""
        with m.FSM(name="engine"):
            with m.State("IDLE"):
                m.d.comb += self.idle.eq(1)
                with m.If(self.start):
                    m.d.sync += counter.eq(0)
                    with m.Switch(self.mode):
                        with m.Case(Mode.RUN):
                            m.next = on_run()
                        with m.Case(Mode.CLEAR):
                            if clear_register:
                                m.d.sync += clearing.eq(1)
                            m.next = "CLEAR"
                        with m.Case(Mode.SCORES):
                            if score is not None:
                                m.d.sync += [score[0].eq(0), score[1].eq(0)]
                                m.next = "SCORE_READ"
            run_states()
            with m.State("CLEAR"):
                if not clear_register:
                    m.d.comb += clearing.eq(1)
                m.d.sync += [counter.eq(counter + 1), *on_clear]
                with m.If(counter == clear_rows - 1):
                    if clear_register:
                        m.d.sync += clearing.eq(0)
                    m.next = "IDLE"
            if score is not None:
                self._score_walk(m, *score)

    def _param_registers(self):
        """``beta``, ``threshold``, ``reset_zero``: the run-time parameters, initialised from
        the model (if any) and kept across reset (only configuration writes change them)."""
        s, c = self.shape, self.contents
        beta = Signal(unsigned(s.f_bits + 1), init=c.beta if c else 0, reset_less=True)
        threshold = Signal(signed(s.v_bits), init=(c.threshold or 1) if c else 1, reset_less=True)
        reset_zero = Signal(init=Reset(c.reset).zero_bit if c and c.reset else 0,
                            reset_less=True)
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
                # the group's last unit (unit == size - 1 without the multiply-add)
                last_lane = (s.size - 1) % lanes
                group_done = (Const(1) if lanes == 1 else
                              (lane == lanes - 1) | ((group == groups - 1) & (lane == last_lane)))
                with m.If(group_done):
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
        """The configuration port of every scheme, in three register stages (the checks are
        long paths: they never share a cycle with the write or the error count). Two cycles
        after ``cfg.en`` (:data:`CONFIG_LATENCY`): the write is applied to the weight, delay
        and bias memories (row ``g * fan_in + i``, lane ``j mod lanes``) or the parameter
        registers if it is valid for this layer (field, row/column, value range), and
        ``cfg.bad`` says whether it was not (then it is ignored)."""
        s, lanes, cfg = self.shape, self.lanes, self.cfg
        value = cfg.data
        # stage 1: the checks of the presented write (field, row and column in the shape,
        # value in range; range checks as bit tests: shallow logic, unlike 32-bit
        # comparators), each registered on its own; stage 2: a few of them combined into
        # each destination's write enable, registered; stage 3: the write, from flip-flops
        def upper_zero(bits: int):          # 0 <= value < 2**bits
            return value[bits:] == 0

        def check(name: str, test):
            q = Signal(name=f"cfg_{name}")
            m.d.sync += q.eq(test)
            return q
        is_field = {f: check(f"field_{f.name.lower()}", cfg.en & (cfg.field == f))
                    for f in Field}
        row_ok = check("row_ok", cfg.row < s.size)
        col_zero = check("col_zero", cfg.col == 0)
        col_in = check("col_in", cfg.col < s.n_in)
        w_fits = check("w_fits", (value[s.w_bits - 1:] == 0) | value[s.w_bits - 1:].all())
        d_fits = check("d_fits", upper_zero(s.d_bits) & (value[:s.d_bits] <= s.d_max))
        beta_ok = check("beta_ok", (cfg.row == Param.BETA) & upper_zero(s.f_bits + 1)
                        & (~value[s.f_bits] | (value[:s.f_bits] == 0)))
        w_ok = is_field[Field.W] & col_in
        d_ok = is_field[Field.D] & col_in
        if s.recurrent:
            col_rec = check("col_rec", cfg.col < s.size)
            d_nonzero = check("d_nonzero", value[:s.d_bits] != 0)
            w_ok |= is_field[Field.W_REC] & col_rec
            d_ok |= is_field[Field.D_REC] & col_rec & d_nonzero
        param = is_field[Field.PARAM] & col_zero
        enables = {"w": row_ok & w_fits & w_ok, "d": row_ok & d_fits & d_ok,
              "bias": (is_field[Field.BIAS] & row_ok & col_zero & w_fits) if s.bias
              else Const(0),
              "beta": param & beta_ok,
              "threshold": param & check("threshold_ok", (cfg.row == Param.THRESHOLD)
                                         & upper_zero(s.v_bits - 1) & (value != 0))  # 1..vmax
              if s.kind is LayerKind.LIF else Const(0),
              "reset": param & check("reset_ok", (cfg.row == Param.RESET) & upper_zero(1))
              if s.kind is LayerKind.LIF else Const(0)}
        en = {name: Signal(name=f"cfg_{name}_write") for name in enables}
        m.d.sync += [en[name].eq(test) for name, test in enables.items()]
        # the write's data and lane registered twice (stages 1 and 2); its synapse row
        # ``g * fan_in + i`` in two halves: stage 1 registers ``g`` and ``i`` (the column,
        # plus ``n_in`` for a recurrent field), stage 2 the row from them, ``g * fan_in`` as
        # a sum of shifted copies (no multiplier: a DSP block away from the decoder was the
        # SHD-size core's critical path). Both are cut to the widths a valid write has
        # (``row_ok``/``col_in``/``col_rec`` reject the others, which write nothing).
        is_rec = (cfg.field == Field.W_REC) | (cfg.field == Field.D_REC)
        value_1, value_q = Signal.like(value), Signal.like(value)
        lane_1, lane_onehot = Signal(lanes), Signal(lanes)
        g_1, group = (Signal(range(max(2, s.groups(lanes))), name=n) for n in ("g_1", "group"))
        i_1 = Signal(range(max(2, s.fan_in)))
        syn_addr = Signal(range(max(2, s.groups(lanes) * s.fan_in)))
        m.d.sync += [value_1.eq(value),
                     lane_1.eq(1 << (cfg.row[:lane_bits] if lane_bits else 0)),
                     g_1.eq(cfg.row >> lane_bits), i_1.eq(cfg.col + Mux(is_rec, s.n_in, 0)),
                     value_q.eq(value_1), group.eq(g_1), lane_onehot.eq(lane_1),
                     syn_addr.eq(sum(Mux(bit, s.fan_in << b, 0) for b, bit in enumerate(g_1))
                                 + i_1)]
        # stage 3: the write; a write that enabled nothing was bad
        m.d.comb += cfg.bad.eq(~Cat(*en.values()).any())
        for port, name in ((w_wr, "w"), (d_wr, "d")):
            m.d.comb += [port.addr.eq(syn_addr), port.en.eq(Mux(en[name], lane_onehot, 0))]
            for l in range(lanes):
                m.d.comb += port.data[l].eq(value_q)
        if b_wr is not None:
            m.d.comb += [b_wr.addr.eq(group), b_wr.en.eq(Mux(en["bias"], lane_onehot, 0))]
            for l in range(lanes):
                m.d.comb += b_wr.data[l].eq(value_q)
        for name, register in (("beta", beta), ("threshold", threshold), ("reset", reset_zero)):
            with m.If(en[name]):
                m.d.sync += register.eq(value_q)


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
