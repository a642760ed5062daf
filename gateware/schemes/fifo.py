"""The ``fifo`` delay scheme: clock-driven, a circular spike history per source."""

from __future__ import annotations

from types import SimpleNamespace

from amaranth import Cat, Const, Module, Mux, Signal, signed, unsigned

from delayhw.spec import LayerKind

from ..layer import LayerEngine
from ..lif import LifUnit
from ..memories import bitmap_attrs
from ..wire import INDEX_BITS, OutKind


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

    Overlap (``overlaps``): the core starts every layer of a step at once. The issue stage
    takes a feedforward source ``i`` only while ``src.ready`` (the feeding layer has written
    the group holding unit ``i`` in this step), else it holds and sends a bubble down the
    pipeline (a bubble adds nothing and writes nothing). A lif layer counts the groups it
    has written since it started and serves ``spikes.ready`` from that count, so the next
    layer's first pass follows this layer's write-back group by group, whatever the
    weights and delays.
    """

    overlaps = True

    def elaborate(self, platform):
        m = Module()
        mems = self._memories(m, before_units=self._history)
        self._unit_memories(mems)
        p = self._pipeline(mems)
        params = self._param_registers()
        self._issue(m, mems, p)
        self._fetch(m, mems, p)
        self._taps_and_sums(m, mems, p)
        self._neurons(m, mems, p, params)
        self._served_spikes(m, mems, p)
        self._fifo_modes(m, mems, p)
        self._elaborate_config(m, mems.syn.w_wr, mems.syn.d_wr, mems.b_wr, *params,
                               p.groups, p.lane_bits)
        return m

    def _history(self, mems) -> None:
        """The scheme's memories: one spike history per source (input, then recurrent unit),
        and a lif layer's spike bitmaps (two banks if recurrent: this step's and the last)."""
        s, lanes = self.shape, self.lanes
        groups = s.groups(lanes)
        mems.h_rd = mems.h_wr = mems.s_wr = mems.s_out = mems.s_rec = None
        if s.d_max:
            h_mem = mems.add("delay_lines", unsigned(s.d_max), s.fan_in)
            mems.h_rd, mems.h_wr = h_mem.read_port(), h_mem.write_port()
        if s.kind is LayerKind.LIF:
            rows = (2 if s.recurrent else 1) * groups
            s_mem = mems.add("spike_bitmaps", unsigned(lanes), rows,
                             attrs=bitmap_attrs(rows) if lanes == 1 else None)
            mems.s_wr, mems.s_out, mems.s_rec = (s_mem.write_port(), s_mem.read_port(),
                                                 s_mem.read_port())

    def _pipeline(self, mems) -> SimpleNamespace:
        """The pipeline's control registers, shared by the stages (``p``): stage ``n``'s
        valid ``v{n}``, group ``g{n}``, ...; ``advance`` (no stall of ``emit``)."""
        s, lanes = self.shape, self.lanes
        p = SimpleNamespace(groups=s.groups(lanes), fan_in=s.fan_in,
                            lane_bits=(lanes - 1).bit_length(), is_lif=s.kind is LayerKind.LIF,
                            banks=2 if s.recurrent else 1)
        groups, fan_in = p.groups, p.fan_in
        p.depth = groups * fan_in
        p.advance = Signal(name="advance")
        # synapse address / clear counter
        p.addr0 = Signal(range(max(p.depth, p.banks * groups, fan_in) + 1), name="addr0")
        p.i0 = Signal(range(fan_in + 1), name="i0")
        p.g0 = Signal(range(groups + 1), name="g0")
        p.issuing = Signal(name="issuing")
        p.v1, p.last1, p.first1, p.rec1, p.commit1 = (
            Signal(name=n) for n in ("v1", "last1", "first1", "rec1", "commit1"))
        p.i1, p.g1 = Signal.like(p.i0, name="i1"), Signal.like(p.g0, name="g1")
        p.recsel1 = Signal(max(1, p.lane_bits), name="recsel1")
        p.v_q, p.v2, p.last2, p.first2 = (Signal(name=n) for n in ("v_q", "v2", "last2", "first2"))
        p.g2 = Signal.like(p.g0, name="g2")
        # each lane's tap (the source's spike D steps ago) and weight, registered apart: the
        # tap's history mux and the weight select are in different stages
        p.tap2 = [Signal(name=f"tap2_{l}") for l in range(lanes)]
        p.w2 = [Signal(signed(s.w_bits), name=f"w2_{l}") for l in range(lanes)]
        # the LIF pipeline: stage n holds group ng[n]'s update; ng[-1] is written back;
        # nv[0] (v3): group ng[0]'s sums enter the LIF units
        p.nv = [Signal(name="v3")] + [Signal(name=f"nv{n + 1}") for n in range(LifUnit.latency)]
        p.ng = [Signal.like(p.g0, name="g3")] + [Signal.like(p.g0, name=f"ng{n + 1}")
                                                 for n in range(LifUnit.latency)]
        p.v_emit = Signal(name="v_emit")    # the emit register holds group ng[-1]'s result
        # running sums; stage 4 reads them the cycle after a group's last synapse
        p.acc = [Signal(signed(s.acc_bits), name=f"acc{l}") for l in range(lanes)]
        p.clearing = Signal(name="clearing")
        p.cur_bank = self.parity if s.recurrent else Const(0)
        p.word = Signal(lanes, name="word")
        return p

    def _issue(self, m, mems, p) -> None:
        """Stage 0: the synapse, history and recurrent-spike addresses of source ``i0`` of
        group ``g0``; a feedforward source whose spike of this step is not written yet holds
        (a bubble)."""
        s, syn, advance, i0, g0 = self.shape, mems.syn, p.advance, p.i0, p.g0
        m.d.comb += advance.eq(~self.emit.valid | self.emit.ready)
        is_rec0, held, take0 = Signal(), Signal(), Signal()
        m.d.comb += [is_rec0.eq(i0 >= s.n_in), held.eq(~is_rec0 & ~self.src.ready),
                     take0.eq(p.issuing & ~held)]
        m.d.comb += [syn.addr.eq(p.addr0), syn.en.eq(advance)]
        if s.d_max:
            m.d.comb += [mems.h_rd.addr.eq(i0), mems.h_rd.en.eq(advance)]
        m.d.comb += [self.src.addr.eq(i0), self.src.en.eq(advance & take0 & ~is_rec0),
                     self.src.last.eq(g0 == p.groups - 1)]
        if s.recurrent:
            rec_index = Signal(INDEX_BITS)
            m.d.comb += [rec_index.eq(i0 - s.n_in),
                         mems.s_rec.addr.eq(~self.parity * p.groups
                                            + (rec_index >> p.lane_bits)),
                         mems.s_rec.en.eq(advance)]
        with m.If(advance):
            m.d.sync += [p.v1.eq(take0), p.last1.eq(i0 == p.fan_in - 1), p.first1.eq(i0 == 0),
                         p.rec1.eq(is_rec0), p.i1.eq(i0), p.g1.eq(g0),
                         p.commit1.eq(g0 == p.groups - 1)]
            if s.recurrent and p.lane_bits:
                m.d.sync += p.recsel1.eq(rec_index[:p.lane_bits])
            with m.If(take0):
                m.d.sync += p.addr0.eq(p.addr0 + 1)
                with m.If(i0 == p.fan_in - 1):
                    m.d.sync += [i0.eq(0), g0.eq(g0 + 1)]
                    with m.If(g0 == p.groups - 1):
                        m.d.sync += p.issuing.eq(0)
                with m.Else():
                    m.d.sync += i0.eq(i0 + 1)

    def _fetch(self, m, mems, p) -> None:
        """Stage 1: memory outputs into flip-flops (a block RAM's clock-to-output is most of
        a cycle): the weights and delays, the source's history and its new spike."""
        s, syn = self.shape, mems.syn
        new_bit = Signal()
        if s.recurrent:
            s_rec = mems.s_rec
            m.d.comb += new_bit.eq(Mux(p.rec1, s_rec.data.bit_select(p.recsel1, 1)
                                       if p.lane_bits else s_rec.data[0], self.src.data))
        else:
            m.d.comb += new_bit.eq(self.src.data)
        p.last_q, p.first_q, p.rec_q, p.commit_q, p.new_q = (Signal(name=n) for n in (
            "last_q", "first_q", "rec_q", "commit_q", "new_q"))
        p.i_q, p.g_q = Signal.like(p.i1, name="i_q"), Signal.like(p.g1, name="g_q")
        p.w_q, p.d_q = Signal.like(syn.w, name="w_q"), Signal.like(syn.d, name="d_q")
        p.h_q = Signal(max(1, s.d_max), name="h_q")
        with m.If(p.advance):
            m.d.sync += [p.v_q.eq(p.v1), p.last_q.eq(p.last1), p.first_q.eq(p.first1),
                         p.rec_q.eq(p.rec1), p.commit_q.eq(p.commit1), p.new_q.eq(new_bit),
                         p.i_q.eq(p.i1), p.g_q.eq(p.g1), p.w_q.eq(syn.w), p.d_q.eq(syn.d)]
            if s.d_max:
                m.d.sync += p.h_q.eq(mems.h_rd.data)

    def _taps_and_sums(self, m, mems, p) -> None:
        """Stage 2: each lane's tap of the history (the last group's pass writes the shifted
        history back); stage 3: the running sums, and the membrane, bias and old-score
        reads of the group whose sums are complete."""
        s, advance = self.shape, p.advance
        line = Signal(s.d_max + 1)          # bit m = s(t - lag - m) of source i_q
        taps = Signal(s.d_max + 1)          # bit m = s(t - m): recurrent lines shifted by lag 1
        m.d.comb += [line.eq(Cat(p.new_q, p.h_q) if s.d_max else p.new_q),
                     taps.eq(Mux(p.rec_q, line << 1, line) if s.d_max else line)]
        for l in range(self.lanes):
            tap = Signal(name=f"tap{l}")
            m.d.comb += tap.eq(taps.bit_select(p.d_q[l], 1) if s.d_max else p.new_q)
            with m.If(advance):
                # a bubble (no source read) adds 0: its weight is registered as 0
                m.d.sync += [p.tap2[l].eq(tap), p.w2[l].eq(Mux(p.v_q, p.w_q[l], 0))]
        if s.d_max:     # the last group's pass shifts this step's spike into each history
            m.d.comb += [mems.h_wr.data.eq(Mux(p.clearing, 0, line[:s.d_max])),
                         mems.h_wr.addr.eq(Mux(p.clearing, p.addr0, p.i_q)),
                         mems.h_wr.en.eq(Mux(p.clearing, p.addr0 < p.fan_in,
                                             p.v_q & p.commit_q & advance))]
        with m.If(advance):
            m.d.sync += [p.v2.eq(p.v_q), p.last2.eq(p.last_q), p.first2.eq(p.first_q),
                         p.g2.eq(p.g_q)]
        for l in range(self.lanes):
            with m.If(advance):
                m.d.sync += p.acc[l].eq(Mux(p.first2, 0, p.acc[l]) + Mux(p.tap2[l], p.w2[l], 0))
        for port in [mems.v_rd] + ([mems.b_rd] if s.bias else []):
            m.d.comb += [port.addr.eq(p.g2), port.en.eq(advance)]
        p.score_q = None
        if not p.is_lif:
            p.scoring, p.score_read = Signal(name="scoring"), Signal(name="score_read")
            # the old score of group ng[-2] is read into score_q as it moves to ng[-1]
            p.score_q = Signal.like(mems.sc_rd.data, name="score_q")
            m.d.comb += [mems.sc_rd.addr.eq(Mux(p.scoring, p.g0, p.ng[-3])),
                         mems.sc_rd.en.eq(Mux(p.scoring, p.score_read, advance))]
            with m.If(advance):
                m.d.sync += p.score_q.eq(mems.sc_rd.data)
        with m.If(advance):
            m.d.sync += [p.nv[0].eq(p.v2 & p.last2), p.ng[0].eq(p.g2)]
            m.d.sync += [a.eq(b) for a, b in zip(p.nv[1:] + p.ng[1:], p.nv[:-1] + p.ng[:-1])]

    def _neurons(self, m, mems, p, params) -> None:
        """Stage 4: the LIF lanes; write-back of the membranes, scores and spike word of
        group ``ng[-1]`` (or zeros while clearing), then the emit register."""
        s, lanes, emit, advance = self.shape, self.lanes, self.emit, p.advance
        vw, gw, groups = p.nv[-1], p.ng[-1], p.groups
        spike_bits = self._lif_lanes(m, mems, en=advance, i_syn=p.acc, clearing=p.clearing,
                                     params=params, old_scores=p.score_q)
        for port in [mems.v_wr] + ([] if p.is_lif else [mems.sc_wr]):
            m.d.comb += [port.addr.eq(Mux(p.clearing, p.addr0, gw)),
                         port.en.eq(Mux(p.clearing, p.addr0 < groups, vw & advance))]
        if p.is_lif:
            s_wr = mems.s_wr
            m.d.comb += [p.word.eq(spike_bits & self._lane_mask(gw)),
                         s_wr.addr.eq(Mux(p.clearing, p.addr0, p.cur_bank * groups + gw)),
                         s_wr.data.eq(Mux(p.clearing, 0, p.word)),
                         s_wr.en.eq(Mux(p.clearing, p.addr0 < p.banks * groups,
                                        vw & advance))]
        with m.If(advance):
            m.d.sync += p.v_emit.eq(vw)
        with m.If(emit.valid & emit.ready):
            m.d.sync += emit.valid.eq(0)
        if p.is_lif:
            with m.If(advance & vw & (p.word != 0)):
                m.d.sync += [emit.valid.eq(1), emit.payload.kind.eq(OutKind.SPIKE),
                             emit.payload.unit.eq(gw * lanes), emit.payload.bits.eq(p.word)]

    def _served_spikes(self, m, mems, p) -> None:
        """A lif layer serves its spikes of this step (``spikes``) from its bitmap: unit
        ``addr`` is final (``ready``) once its group's word is in (a read in the cycle after
        the write sees it), counted by the groups written since ``start``."""
        if not p.is_lif:
            return
        lane_bits, s_out, spikes = p.lane_bits, mems.s_out, self.spikes
        written = Signal(range(p.groups + 1))
        with m.If(self.start):
            m.d.sync += written.eq(0)
        with m.Elif(p.nv[-1] & p.advance):
            m.d.sync += written.eq(written + 1)
        m.d.comb += spikes.ready.eq((spikes.addr >> lane_bits) < written)
        sel = Signal(max(1, lane_bits))
        m.d.comb += [s_out.addr.eq(p.cur_bank * p.groups + (spikes.addr >> lane_bits)),
                     s_out.en.eq(spikes.en)]
        if lane_bits:
            with m.If(spikes.en):
                m.d.sync += sel.eq(spikes.addr[:lane_bits])
            m.d.comb += spikes.data.eq(s_out.data.bit_select(sel, 1))
        else:
            m.d.comb += spikes.data.eq(s_out.data[0])

    def _fifo_modes(self, m, mems, p) -> None:
        """The modes (:meth:`LayerEngine._modes`): RUN issues every synapse once and ends
        when the pipeline and the emit register are empty; CLEAR zeroes every memory."""
        emit = self.emit

        def on_run():
            m.d.sync += [p.issuing.eq(1), p.i0.eq(0), p.g0.eq(0)]
            return "RUN"

        def run_states():
            with m.State("RUN"):
                with m.If(~p.issuing & ~p.v1 & ~p.v_q & ~p.v2 & ~p.v_emit & ~emit.valid
                          & ~Cat(*p.nv).any()):
                    m.next = "IDLE"

        lane = Signal(range(self.lanes + 1))       # score walk
        score = None if p.is_lif else (p.g0, lane, p.scoring, p.score_read, mems.sc_rd)
        self._modes(m, counter=p.addr0, clearing=p.clearing, on_run=on_run,
                    run_states=run_states, score=score,
                    clear_rows=max(p.depth, p.banks * p.groups if p.is_lif else p.groups))
