"""The ``ring`` delay scheme: event-driven, a ring of future input currents per neuron.

A spike of source ``i`` (input channel, previous-layer unit, or for recurrence this layer's
unit) at step ``t`` adds ``W[j,i]`` into slot ``(t + D[j,i]) mod (d_max+1)`` of every target
``j``; when the neurons update at step ``t`` each reads slot ``t mod (d_max+1)`` as its
exact input current ``I`` and clears it. Only the fan-out of sources that spiked is visited.
"""

from __future__ import annotations

from amaranth import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data

from delayhw.spec import LayerKind

from ..layer import LayerEngine, Mode, event_layout, synapse_init, unit_init
from ..lif import LifUnit
from ..memories import KindMemory, SynapseMemory
from ..shape import memory_depth
from ..wire import OutKind


class RingLayer(LayerEngine):
    """The ``ring`` delay scheme (DESIGN.md section 5), behind :class:`LayerEngine`.

    Each step runs two phases.

    *Events.* The layer walks this step's spike list of its source (``src_events``), then,
    if recurrent, its own list of the previous step (``events``). Each spike expands into
    its fan-out, ``lanes`` targets per cycle: unit ``j`` belongs to lane ``j % lanes``, and
    each lane owns its ring memory (``ceil(N/lanes) * (d_max+1)`` slots of ``acc_bits``),
    so lanes never contend. Pipeline: fetch (list entry -> spike index) -> row register ->
    issue (fan-out row ``g * fan_in + i``, ``g = 0..G-1``) -> slot (``(t + D - lag) mod
    (d_max+1)``, ``lag`` 1 for recurrent spikes, which are a step old) -> ring read ->
    ring data registered -> add and write back. An operation reads its slot before the two
    operations ahead of it have written theirs; when it addresses the same unit and slot as
    one of them (small layers, back-to-back spikes with equal delays), that operation's sum
    is forwarded in place of the stale value read, so no addition is lost and nothing
    stalls.

    *Neurons.* One pass over the ``ceil(N/lanes)`` unit groups: read slot ``t mod
    (d_max+1)`` (and clear it), membrane and bias, update through :class:`LifUnit` per lane,
    write the membrane, emit the spike word and append it to the layer's spike list.
    Output back-pressure freezes this pass (the events phase emits nothing).

    Cycles per step: ``ceil(N/lanes) * (source spikes + recurrent spikes of the previous
    step + 1)`` plus a fixed overhead (:meth:`CoreShape.cycles_per_step`).
    """

    event_driven = True
    overlaps = True

    def elaborate(self, platform):
        m = Module()
        s, lanes = self.shape, self.lanes
        groups, fan_in, slots = s.groups(lanes), s.fan_in, s.d_max + 1
        lane_bits = (lanes - 1).bit_length()
        is_lif = s.kind is LayerKind.LIF
        c = self.contents

        # ------------------------------------------------------------------ memories
        def add_memory(kind: str, shape, rows: int, init=(), name=None) -> KindMemory:
            mem = KindMemory(kind, shape=shape, depth=memory_depth(rows), init=init)
            m.submodules[name or kind] = mem
            return mem

        w_init, d_init = synapse_init(c, lanes, groups)
        # weights and delays packed in one single-port memory (SPRAM on iCE40 if chosen):
        # read in fan-out order during a step, written only by configuration while idle.
        # The rings stay two-port: each cycle reads one slot and writes back another.
        syn = SynapseMemory(w_bits=s.w_bits, d_bits=s.d_bits, lanes=lanes,
                            depth=memory_depth(groups * fan_in), w_init=w_init,
                            d_init=d_init, spram=self.synapse_spram)
        m.submodules.synapses = syn
        w_wr, d_wr = syn.w_wr, syn.d_wr
        ring_rd, ring_wr = [], []
        for l in range(lanes):
            mem = add_memory("ring", signed(s.acc_bits), groups * slots, name=f"ring{l}")
            ring_wr.append(mem.write_port())
            ring_rd.append(mem.read_port())
        v_mem = add_memory("membranes", data.ArrayLayout(signed(s.v_bits), lanes), groups)
        v_rd, v_wr = v_mem.read_port(), v_mem.write_port()
        if s.bias:
            b_mem = add_memory("bias", data.ArrayLayout(signed(s.w_bits), lanes), groups,
                               unit_init(c.bias if c is not None else None, lanes, groups))
            b_rd, b_wr = b_mem.read_port(), b_mem.write_port(granularity=1)
        if is_lif:
            e_mem = add_memory("spike_lists", event_layout(lanes), groups)
            # one read port serves the next layer, one (recurrent) reads the own list
            e_rd, e_wr = e_mem.read_port(), e_mem.write_port()
            e_rec = e_mem.read_port() if s.recurrent else None
        else:
            sc_mem = add_memory("scores", data.ArrayLayout(signed(self.score_bits), lanes),
                                groups)
            sc_rd, sc_wr = sc_mem.read_port(), sc_mem.write_port()

        # run-time parameters (configuration survives reset)
        beta, threshold, reset_zero = self._param_registers()

        # ring pointers: slot of this step, and of the previous step (for recurrent spikes)
        ptr = Signal(range(slots + 1))
        ptr_prev = Signal(range(slots + 1), init=slots - 1)

        # the engine's phase as flags set and cleared with its states (registers: they select
        # the ring ports, whose read-during-write logic must start from flip-flops)
        events_phase, neurons_phase, clearing = Signal(), Signal(), Signal()
        clear_addr = Signal(range(max(groups * slots, groups) + 1))

        # ------------------------------------------------------------------ fetch
        # Look-ahead addressing: the list is read at ``ea_next``, so ``data`` always holds
        # entry ``ea``. The own list of the previous step comes first (recurrent layers; it
        # does not depend on the layer below, which runs at the same time), then the
        # feedforward list, read as the layer below appends to it (overlap): ``more`` (a
        # register: ``ea_next != count`` a cycle ago, so an entry is read from the cycle after
        # it was counted, when the non-transparent read sees it) says an entry is there, and
        # the list is done when none is and ``src_final`` (the source's ``final``, a cycle
        # late). In the cycle the step starts, a source that is not final still shows its
        # previous step's count: ``more`` stays low then. ``left`` counts the own entries
        # still to read (``left_nonzero``: its test, a register set with it); ``ea_plus`` is
        # ``ea + 1``, a register. No comparator or carry on the address path. ``ea`` is as wide
        # as the longer list can be (the source's: one entry per input channel or source
        # group; the own: one per group), not as the port's 16-bit count: ``more``'s
        # comparison and ``ea_plus``'s carry stay a few bits long.
        own_count = Signal(range(groups + 1))
        fetching, rec_phase = Signal(), Signal()
        entries = max(s.n_in, groups)
        ea = Signal(range(entries + 2))
        ea_next = Signal.like(ea)
        ea_plus = Signal.like(ea, init=1)       # ea + 1, a register (no carry on the address)
        src_count = Signal.like(ea)             # the source's count (at most ``entries``)
        m.d.comb += src_count.eq(self.src_events.count)
        left = Signal(range(groups + 1))
        left_nonzero = Signal()                 # left != 0, a register set with left
        more = Signal()
        src_final = Signal()
        # the walk flags are written through their next values (combinational, by default
        # the registers), so that ``have`` can be a register of its own, computed from them:
        # ``take`` is then one LUT from flip-flops
        fetching_next, rec_phase_next = Signal(), Signal()
        left_nonzero_next, more_next = Signal(), Signal()
        m.d.comb += [fetching_next.eq(fetching), rec_phase_next.eq(rec_phase),
                     left_nonzero_next.eq(left_nonzero)]
        m.d.sync += [fetching.eq(fetching_next), rec_phase.eq(rec_phase_next),
                     left_nonzero.eq(left_nonzero_next), more.eq(more_next)]
        consumed = Signal(lanes)
        entry = Signal(event_layout(lanes))
        m.d.comb += entry.eq(self.src_events.data)
        if s.recurrent:
            with m.If(rec_phase):
                m.d.comb += entry.eq(e_rec.data)
        have = Signal()         # an entry is there: fetching & (rec_phase ? left != 0 : more)
        if s.recurrent:
            m.d.sync += have.eq(fetching_next & Mux(rec_phase_next, left_nonzero_next,
                                                    more_next))
        else:
            m.d.sync += have.eq(fetching_next & more_next)
        remaining = Signal(lanes)
        lowest = Signal(lanes)
        bit = Signal(max(1, lane_bits))
        m.d.comb += [remaining.eq(entry.mask & ~consumed), lowest.eq(remaining & -remaining)]
        for l in reversed(range(lanes)):
            with m.If(remaining[l]):
                m.d.comb += bit.eq(l)
        spike_index = Cat(bit, entry.group) if lane_bits else entry.group

        # ------------------------------------------------------------------ row register
        p_valid, p_rec = Signal(), Signal()
        p_row = Signal(range(groups * fan_in + 1))
        p_index = Signal(len(self.src.addr))
        busy, last_group = Signal(), Signal()
        issue_take = Signal()
        m.d.comb += issue_take.eq(p_valid & (~busy | last_group))
        take = Signal()
        m.d.comb += take.eq(have & (~p_valid | issue_take))

        # the next address: ``ea_plus`` when this entry's last bit is taken, 0 when the own
        # list ends (the feedforward list follows) or nothing is fetched, else ``ea``. ``more``
        # compares each candidate with the count side by side and picks a result with the
        # same selects (no comparator behind the address mux)
        next_entry, restart, keep = Signal(), Signal(), Signal()
        m.d.comb += [next_entry.eq(take & ((remaining & ~lowest) == 0)),
                     keep.eq(fetching & ~restart),
                     ea_next.eq(Mux(next_entry, ea_plus, Mux(keep, ea, 0)))]
        if s.recurrent:
            m.d.comb += restart.eq(fetching & ~have & rec_phase)
        m.d.comb += more_next.eq(Mux(next_entry, ea_plus != src_count,
                                     Mux(keep, ea != src_count, src_count != 0))
                                 & ~(self.start & ~self.src_events.final))
        m.d.sync += src_final.eq(self.src_events.final)
        with m.If(take):
            with m.If(next_entry):
                m.d.sync += [consumed.eq(0), left.eq(left - 1)]
                m.d.comb += left_nonzero_next.eq(left != 1)
            with m.Else():
                m.d.sync += consumed.eq(consumed | lowest)
            m.d.sync += [p_valid.eq(1), p_rec.eq(rec_phase), p_index.eq(spike_index),
                         p_row.eq(spike_index + Mux(rec_phase, s.n_in, 0))]
        with m.Elif(issue_take):
            m.d.sync += p_valid.eq(0)
        with m.If(fetching & ~have):                      # this list is done (so far)
            if s.recurrent:
                with m.If(rec_phase):                      # own list: then feedforward
                    m.d.comb += rec_phase_next.eq(0)
                with m.Elif(src_final):
                    m.d.comb += fetching_next.eq(0)
            else:
                with m.If(src_final):
                    m.d.comb += fetching_next.eq(0)
        m.d.sync += [ea.eq(ea_next), ea_plus.eq(ea_next + 1)]
        m.d.comb += self.src_events.addr.eq(ea_next)
        # feedforward spikes consumed: clear them in the source's bitmap (the core's input)
        m.d.comb += [self.src.addr.eq(p_index), self.src.en.eq(issue_take & ~p_rec),
                     self.src.last.eq(1)]

        # ------------------------------------------------------------------ issue
        row = Signal.like(p_row)
        g = Signal(range(groups + 1))
        base = Signal(range(groups * slots + 1))
        rec_i = Signal()
        # last_group (a register): g == groups - 1
        with m.If(busy & ~last_group):
            m.d.sync += [row.eq(row + fan_in), g.eq(g + 1), base.eq(base + slots),
                         last_group.eq(g == max(0, groups - 2))]
        with m.Elif(issue_take):
            m.d.sync += [busy.eq(1), row.eq(p_row), g.eq(0), base.eq(0), rec_i.eq(p_rec),
                         last_group.eq(int(groups == 1))]
        with m.Else():
            m.d.sync += busy.eq(0)
        m.d.comb += [syn.addr.eq(row), syn.en.eq(1)]

        # stage 1: the fan-out word leaves the block RAMs; stage 1b: registered as it is
        # (a block RAM's output is slow: no logic behind it), with the slot pointer of the
        # spike and that pointer minus R, and both added to the group's base address
        v1, rec1, v1b = Signal(), Signal(), Signal()
        base1 = Signal.like(base)
        ptr_lag = Signal.like(ptr)
        ptr_lag_minus = Signal(signed(len(ptr) + 1))
        base_lag = Signal(range(groups * slots + slots))
        base_lag_minus = Signal(signed(len(base_lag) + 1))
        m.d.sync += [v1.eq(busy & events_phase), rec1.eq(rec_i), base1.eq(base),
                     v1b.eq(v1),
                     ptr_lag.eq(Mux(rec1, ptr_prev, ptr)),
                     ptr_lag_minus.eq(Mux(rec1, ptr_prev, ptr) - slots),
                     base_lag.eq(base1 + Mux(rec1, ptr_prev, ptr)),
                     base_lag_minus.eq(base1 + Mux(rec1, ptr_prev, ptr) - slots)]
        v2 = Signal()
        m.d.sync += v2.eq(v1b)
        # the ring address of each lane's operation, registered: it addresses the ring read
        # and is compared with the write-back's (read-during-write logic) in one cycle
        event_addr2 = [Signal(range(groups * slots + 1), name=f"addr2_{l}")
                       for l in range(lanes)]
        w2 = [Signal(signed(s.w_bits), name=f"w2_{l}") for l in range(lanes)]
        # base + (t - lag + D) mod R: the wrap decided on the slot, the address picked from
        # two additions side by side
        for l in range(lanes):
            d1b = Signal(unsigned(s.d_bits), name=f"d1b_{l}")
            w1b = Signal(signed(s.w_bits), name=f"w1b_{l}")
            m.d.sync += [d1b.eq(syn.d[l]), w1b.eq(syn.w[l])]
            total = Signal(range(2 * slots + 1), name=f"slot_sum{l}")
            wrapped = Signal(signed(len(total) + 1), name=f"slot_wrapped{l}")
            m.d.comb += [total.eq(ptr_lag + d1b), wrapped.eq(ptr_lag_minus + d1b)]
            m.d.sync += [event_addr2[l].eq(Mux(wrapped < 0, base_lag + d1b,
                                               base_lag_minus + d1b)),
                         w2[l].eq(w1b)]

        # stage 2: ring read; stage 3: ring data registered, hazards found; stage 4: add and
        # write back. Operation n reads its slot before operations n-1 and n-2 have written
        # theirs: when it addresses the same slot as either, their sum is forwarded instead
        # (the newer one first).
        v3, v4 = Signal(), Signal()
        m.d.sync += [v3.eq(v2), v4.eq(v3)]
        addr_shape = range(groups * slots + 1)
        ring_wr_event = []            # (addr, data) of the write-back per lane
        for l in range(lanes):
            addr3, addr4, addr5, addr6 = (Signal(addr_shape, name=f"addr{k}_{l}")
                                          for k in (3, 4, 5, 6))
            w3, w4 = (Signal(signed(s.w_bits), name=f"w{k}_{l}") for k in (3, 4))
            data4, sum4, sum5, sum6 = (Signal(signed(s.acc_bits), name=f"{n}_{l}")
                                       for n in ("data4", "sum4", "sum5", "sum6"))
            v5, v6, hit1, hit2 = (Signal(name=f"{n}_{l}") for n in ("v5", "v6", "hit1", "hit2"))
            m.d.sync += [addr3.eq(event_addr2[l]), w3.eq(w2[l]),
                         addr4.eq(addr3), w4.eq(w3), data4.eq(ring_rd[l].data),
                         hit1.eq(v4 & (addr3 == addr4)), hit2.eq(v5 & (addr3 == addr5)),
                         addr5.eq(addr4), sum5.eq(sum4), v5.eq(v4),
                         addr6.eq(addr5), sum6.eq(sum5), v6.eq(v5)]
            m.d.comb += sum4.eq(Mux(hit1, sum5, Mux(hit2, sum6, data4)) + w4)
            ring_wr_event.append((addr4, sum4))
        # ------------------------------------------------------------------ neuron pass
        emit = self.emit
        advance = Signal()
        m.d.comb += advance.eq(~emit.valid | emit.ready)
        n_issuing = Signal()
        ng = Signal(range(groups + 1))
        naddr0 = Signal(range(groups * slots + 1))     # group ng's slot ptr, a register
        lifs = []
        for l in range(lanes):
            m.submodules[f"lif{l}"] = lif = LifUnit(s)
            lifs.append(lif)
        latency = LifUnit.latency
        # pipeline registers of stages 1 .. latency + 1 (the write-back stage)
        pv = [n_issuing] + [Signal(name=f"nv{k}") for k in range(1, latency + 2)]
        pg = [ng] + [Signal.like(ng, name=f"ng{k}") for k in range(1, latency + 2)]
        pa = [naddr0] + [Signal.like(naddr0, name=f"na{k}") for k in range(1, latency + 2)]
        with m.If(advance):
            for k in range(1, latency + 2):
                m.d.sync += [pv[k].eq(pv[k - 1] & neurons_phase), pg[k].eq(pg[k - 1]),
                             pa[k].eq(pa[k - 1])]
            with m.If(n_issuing):
                m.d.sync += [ng.eq(ng + 1), naddr0.eq(naddr0 + slots)]
                with m.If(ng == groups - 1):
                    m.d.sync += n_issuing.eq(0)
        wb = latency + 1
        for port in [v_rd] + ([b_rd] if s.bias else []):
            m.d.comb += [port.addr.eq(ng), port.en.eq(advance)]

        spike_bits = Signal(lanes)
        last_mask = (1 << (s.size - (groups - 1) * lanes)) - 1
        lane_mask = Mux(pg[wb] == groups - 1, last_mask, (1 << lanes) - 1)
        write_back, written = Signal(), Signal()     # written: the emit register is loaded
        m.d.comb += write_back.eq(pv[wb] & advance)
        with m.If(advance):
            m.d.sync += written.eq(write_back)
        for l, lif in enumerate(lifs):
            m.d.comb += [lif.v.eq(v_rd.data[l]), lif.i_syn.eq(ring_rd[l].data),
                         lif.bias.eq(b_rd.data[l] if s.bias else 0), lif.beta.eq(beta),
                         lif.threshold.eq(threshold), lif.reset_zero.eq(reset_zero),
                         v_wr.data[l].eq(Mux(clearing, 0, lif.v_next)),
                         spike_bits[l].eq(lif.spike), lif.en.eq(advance)]
            if not is_lif:
                m.d.comb += sc_wr.data[l].eq(Mux(clearing, 0, sc_rd.data[l] + lif.v_next))
        for port in [v_wr] + ([] if is_lif else [sc_wr]):
            m.d.comb += [port.addr.eq(Mux(clearing, clear_addr, pg[wb])),
                         port.en.eq(Mux(clearing, clear_addr < groups, write_back))]

        # ring ports, by phase
        for l in range(lanes):
            with m.If(neurons_phase):
                m.d.comb += [ring_rd[l].addr.eq(naddr0), ring_rd[l].en.eq(advance),
                             ring_wr[l].addr.eq(pa[wb]), ring_wr[l].data.eq(0),
                             ring_wr[l].en.eq(write_back)]
            with m.Elif(clearing):
                m.d.comb += [ring_wr[l].addr.eq(clear_addr), ring_wr[l].data.eq(0),
                             ring_wr[l].en.eq(clear_addr < groups * slots)]
            with m.Else():
                m.d.comb += [ring_rd[l].addr.eq(event_addr2[l]), ring_rd[l].en.eq(1),
                             ring_wr[l].addr.eq(ring_wr_event[l][0]),
                             ring_wr[l].data.eq(ring_wr_event[l][1]),
                             ring_wr[l].en.eq(v4)]
        # emit register and the spike list
        word = Signal(lanes)
        m.d.comb += word.eq(spike_bits & lane_mask)
        with m.If(emit.valid & emit.ready):
            m.d.sync += emit.valid.eq(0)
        if is_lif:
            with m.If(write_back & (word != 0)):
                m.d.sync += [emit.valid.eq(1), emit.payload.kind.eq(OutKind.SPIKE),
                             emit.payload.unit.eq(pg[wb] * lanes), emit.payload.bits.eq(word),
                             own_count.eq(own_count + 1)]
            m.d.comb += [e_wr.addr.eq(own_count), e_wr.data.mask.eq(word),
                         e_wr.data.group.eq(pg[wb]), e_wr.en.eq(write_back & (word != 0)),
                         e_rd.en.eq(1), self.events.count.eq(own_count),
                         self.events.final.eq(self.idle & ~self.start),
                         self.events.data.eq(e_rd.data), e_rd.addr.eq(self.events.addr)]
            if s.recurrent:
                m.d.comb += [e_rec.addr.eq(ea_next), e_rec.en.eq(1)]

        # ------------------------------------------------------------------ modes
        # v1 .. v4 shift unconditionally, so their OR is a register fed by what enters them
        in_flight = Signal()
        m.d.sync += in_flight.eq((busy & events_phase) | v1 | v1b | v2 | v3)
        pipeline_busy = p_valid | busy | in_flight
        if not is_lif:
            scoring, score_read = Signal(), Signal()
            lane = Signal(range(lanes + 1))
            m.d.comb += [sc_rd.addr.eq(Mux(scoring, ng, pg[latency])),
                         sc_rd.en.eq(Mux(scoring, score_read, advance))]
        with m.FSM(name="engine"):
            with m.State("IDLE"):
                m.d.comb += self.idle.eq(1)
                with m.If(self.start):
                    m.d.sync += clear_addr.eq(0)
                    with m.Switch(self.mode):
                        with m.Case(Mode.RUN):
                            # this step's list starts empty; the previous one is read first
                            m.d.comb += [fetching_next.eq(1), rec_phase_next.eq(s.recurrent),
                                         left_nonzero_next.eq(own_count != 0)]
                            m.d.sync += [consumed.eq(0), left.eq(own_count), own_count.eq(0),
                                         events_phase.eq(1)]
                            m.next = "EVENTS"
                        with m.Case(Mode.CLEAR):
                            m.d.sync += clearing.eq(1)
                            m.next = "CLEAR"
                        with m.Case(Mode.SCORES):
                            if not is_lif:
                                m.d.sync += [ng.eq(0), lane.eq(0)]
                                m.next = "SCORE_READ"
            with m.State("EVENTS"):
                with m.If(~fetching & ~pipeline_busy):
                    m.d.sync += [n_issuing.eq(1), ng.eq(0), naddr0.eq(ptr),
                                 events_phase.eq(0), neurons_phase.eq(1)]
                    m.next = "NEURONS"
            with m.State("NEURONS"):
                with m.If(~n_issuing & ~Cat(*pv[1:]).any() & ~written & ~emit.valid):
                    m.d.sync += [ptr.eq(Mux(ptr == slots - 1, 0, ptr + 1)), ptr_prev.eq(ptr),
                                 neurons_phase.eq(0)]
                    m.next = "IDLE"
            with m.State("CLEAR"):
                m.d.sync += [clear_addr.eq(clear_addr + 1), own_count.eq(0), ptr.eq(0),
                             ptr_prev.eq(slots - 1)]
                with m.If(clear_addr == max(groups * slots, groups) - 1):
                    m.d.sync += clearing.eq(0)
                    m.next = "IDLE"
            if not is_lif:
                self._score_walk(m, ng, lane, scoring, score_read, sc_rd)

        # ------------------------------------------------------------------ configuration
        # same addresses and memory layout as the fifo scheme: one decoder for both
        self._elaborate_config(m, w_wr, d_wr, b_wr if s.bias else None, beta, threshold,
                               reset_zero, groups, lane_bits)
        return m
