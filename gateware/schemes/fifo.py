"""The ``fifo`` delay scheme: clock-driven, a circular spike history per source."""

from __future__ import annotations

from amaranth import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, memory

from ..layer import LayerEngine, Mode, synapse_init, unit_init
from ..lif import LifUnit
from ..memories import SynapseMemory, bitmap_attrs
from ..shape import INDEX_BITS, OutKind, memory_depth


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

        def add_memory(kind: str, shape, rows: int, init=(), attrs=None) -> memory.Memory:
            mem = memory.Memory(shape=shape, depth=memory_depth(rows), init=init, attrs=attrs)
            m.submodules[kind] = self.memories[kind] = mem
            return mem

        # weights and delays packed in one single-port memory (SPRAM on iCE40 if chosen):
        # read in sequence during a step, written only by configuration while idle
        syn = SynapseMemory(w_bits=s.w_bits, d_bits=s.d_bits, lanes=lanes,
                            depth=memory_depth(depth), w_init=w_init, d_init=d_init,
                            spram=self.synapse_spram)
        m.submodules.synapses = syn
        self.memories["synapses"] = syn.memory
        w_wr, d_wr = syn.w_wr, syn.d_wr
        v_mem = add_memory("membranes", data.ArrayLayout(signed(s.v_bits), lanes), groups)
        v_rd, v_wr = v_mem.read_port(), v_mem.write_port()
        if s.d_max:     # one spike history per source (input, then recurrent unit)
            h_mem = add_memory("delay_lines", unsigned(s.d_max), fan_in)
            h_rd, h_wr = h_mem.read_port(), h_mem.write_port()
        if s.bias:
            b_mem = add_memory("bias", data.ArrayLayout(signed(s.w_bits), lanes), groups,
                               unit_init(c.bias if c is not None else None, lanes, groups))
            b_rd, b_wr = b_mem.read_port(), b_mem.write_port(granularity=1)
        if is_lif:
            s_mem = add_memory("spike_bitmaps", unsigned(lanes), banks * groups,
                               attrs=bitmap_attrs(banks * groups) if lanes == 1 else None)
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
        # each lane's tap (the source's spike D steps ago) and weight, registered apart: the
        # tap's history mux and the weight select are in different stages
        tap2 = [Signal(name=f"tap2_{l}") for l in range(lanes)]
        w2 = [Signal(signed(s.w_bits), name=f"w2_{l}") for l in range(lanes)]
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
        # a feedforward source whose spike of this step is not written yet: hold (bubble)
        held, take0 = Signal(), Signal()
        m.d.comb += [held.eq(~is_rec0 & ~self.src.ready), take0.eq(issuing & ~held)]
        m.d.comb += [syn.addr.eq(addr0), syn.en.eq(advance)]
        if s.d_max:
            m.d.comb += [h_rd.addr.eq(i0), h_rd.en.eq(advance)]
        m.d.comb += [
            self.src.addr.eq(i0),
            self.src.en.eq(advance & take0 & ~is_rec0),
            self.src.last.eq(g0 == groups - 1),
        ]
        if s.recurrent:
            rec_index = Signal(INDEX_BITS)
            m.d.comb += [rec_index.eq(i0 - s.n_in),
                         s_rec.addr.eq(prev_bank * groups + (rec_index >> lane_bits)),
                         s_rec.en.eq(advance)]
        with m.If(advance):
            m.d.sync += [v1.eq(take0), last1.eq(i0 == fan_in - 1), first1.eq(i0 == 0),
                         rec1.eq(is_rec0), i1.eq(i0), g1.eq(g0), commit1.eq(g0 == groups - 1)]
            if s.recurrent and lane_bits:
                m.d.sync += recsel1.eq(rec_index[:lane_bits])
            with m.If(take0):
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
        w_q, d_q = Signal.like(syn.w), Signal.like(syn.d)
        h_q = Signal(max(1, s.d_max))
        with m.If(advance):
            m.d.sync += [v_q.eq(v1), last_q.eq(last1), first_q.eq(first1), rec_q.eq(rec1),
                         commit_q.eq(commit1), new_q.eq(new_bit), i_q.eq(i1), g_q.eq(g1),
                         w_q.eq(syn.w), d_q.eq(syn.d)]
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
                # a bubble (no source read) adds 0: its weight is registered as 0
                m.d.sync += [tap2[l].eq(tap), w2[l].eq(Mux(v_q, w_q[l], 0))]
        if s.d_max:     # the last group's pass shifts this step's spike into each history
            m.d.comb += [h_wr.data.eq(Mux(clearing, 0, line[:s.d_max])),
                         h_wr.addr.eq(Mux(clearing, addr0, i_q)),
                         h_wr.en.eq(Mux(clearing, addr0 < fan_in, v_q & commit_q & advance))]
        with m.If(advance):
            m.d.sync += [v2.eq(v_q), last2.eq(last_q), first2.eq(first_q), g2.eq(g_q)]

        # ------------------------------------------------------------------ stage 3: sums
        for l in range(lanes):
            with m.If(advance):
                m.d.sync += acc[l].eq(Mux(first2, 0, acc[l]) + Mux(tap2[l], w2[l], 0))
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
            # groups written in this step (reset at start): unit ``addr`` is final once its
            # group's word is in the bitmap (a read in the cycle after the write sees it)
            written = Signal(range(groups + 1))
            with m.If(self.start):
                m.d.sync += written.eq(0)
            with m.Elif(vw & advance):
                m.d.sync += written.eq(written + 1)
            m.d.comb += self.spikes.ready.eq((self.spikes.addr >> lane_bits) < written)
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
