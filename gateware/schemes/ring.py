"""The ``ring`` delay scheme: event-driven, a ring of future input currents per neuron.

A spike of source ``i`` (input channel, previous-layer unit, or for recurrence this layer's
unit) at step ``t`` adds ``W[j,i]`` into slot ``(t + D[j,i]) mod (d_max+1)`` of every target
``j``; when the neurons update at step ``t`` each reads slot ``t mod (d_max+1)`` as its
exact input current ``I`` and clears it. Only the fan-out of sources that spiked is visited.
"""

from __future__ import annotations

from types import SimpleNamespace

from amaranth import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data

from delayhw.spec import LayerKind

from ..layer import LayerEngine, event_layout, lowest_set_bit
from ..lif import LifUnit
from ..wire import OutKind


#: list entries the list reader holds at most: read (on the block RAM's output) or queued
ENTRY_QUEUE = 3


class RingLayer(LayerEngine):
    """The ``ring`` delay scheme (docs/design.md section 5), behind :class:`LayerEngine`.

    Each step runs two phases.

    *Events.* The layer walks this step's spike list of its source (``src_events``), then,
    if recurrent, its own list of the previous step (``events``). Each spike expands into
    its fan-out, ``lanes`` targets per cycle: unit ``j`` belongs to lane ``j % lanes``, and
    each lane owns its ring memory (``ceil(N/lanes) * (d_max+1)`` slots of ``acc_bits``),
    so lanes never contend. Pipeline: read (a list entry per cycle at a register address)
    -> entry queue (registers) -> pick (head entry -> spike index) -> row register ->
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
        mems = self._memories(m, before_units=self._rings)
        self._unit_memories(mems)
        self._spike_list(mems)
        p = self._control()
        params = self._param_registers()
        self._list_reader(m, mems, p)
        self._entry_queue(m, mems, p)
        self._picker(m, p)
        self._issue(m, mems, p)
        self._read_modify_write(m, mems, p)
        self._neuron_pass(m, mems, p, params)
        self._ring_ports(m, mems, p)
        self._ring_modes(m, mems, p)
        # same addresses and memory layout as the fifo scheme: one decoder for both
        self._elaborate_config(m, mems.syn.w_wr, mems.syn.d_wr, mems.b_wr, *params,
                               p.groups, p.lane_bits)
        return m

    def _rings(self, mems) -> None:
        """Each lane's ring (``groups * (d_max+1)`` slots; submodules ``ring{l}``): two-port,
        each cycle reads one slot and writes back another."""
        s, lanes = self.shape, self.lanes
        slots = s.d_max + 1
        mems.ring_rd, mems.ring_wr = [], []
        for l in range(lanes):
            mem = mems.add("ring", signed(s.acc_bits), s.groups(lanes) * slots, name=f"ring{l}")
            mems.ring_wr.append(mem.write_port())
            mems.ring_rd.append(mem.read_port())

    def _spike_list(self, mems) -> None:
        """A lif layer's spike list, double-buffered by step parity (entry ``2 * n +
        parity``): one read port serves the next layer (at its step's parity), one
        (recurrent) reads the own list of the previous step."""
        s, lanes = self.shape, self.lanes
        mems.e_rd = mems.e_wr = mems.e_rec = None
        if s.kind is LayerKind.LIF:
            e_mem = mems.add("spike_lists", event_layout(lanes), 2 * s.groups(lanes))
            mems.e_rd, mems.e_wr = e_mem.read_port(), e_mem.write_port()
            mems.e_rec = e_mem.read_port() if s.recurrent else None

    def _control(self) -> SimpleNamespace:
        """The registers the stages share (``p``): ring pointers, phase flags, the list walk's
        registers and the row register."""
        s, lanes = self.shape, self.lanes
        p = SimpleNamespace(groups=s.groups(lanes), fan_in=s.fan_in, slots=s.d_max + 1,
                            lane_bits=(lanes - 1).bit_length(), is_lif=s.kind is LayerKind.LIF)
        groups, slots = p.groups, p.slots
        # ring pointers: slot of this step, and of the previous step (for recurrent spikes)
        p.ptr = Signal(range(slots + 1), name="ptr")
        p.ptr_prev = Signal(range(slots + 1), init=slots - 1, name="ptr_prev")
        # the engine's phase as flags set and cleared with its states (registers: they select
        # the ring ports, whose read-during-write logic must start from flip-flops)
        p.events_phase, p.neurons_phase, p.clearing = (
            Signal(name=n) for n in ("events_phase", "neurons_phase", "clearing"))
        p.clear_addr = Signal(range(max(groups * slots, groups) + 1), name="clear_addr")
        p.own_count = Signal(range(groups + 1), name="own_count")
        # the parity of the step this engine runs (or, idle, runs next): it writes its list
        # in that half and reads its own previous list in the other; the count of the
        # previous step's list, served while the layer above still walks it
        p.par = Signal(name="par")
        p.prev_count = Signal(range(groups + 1), name="prev_count")
        # the list reader: walking (``fetching``), own entries still to read (``left``, and
        # its test ``left_nonzero``), the read address and its successor, entries read and
        # not yet consumed (``claimed``), the entry on the list's read data (``d_valid``,
        # from the own list: ``d_rec``)
        p.fetching, p.left_nonzero = Signal(name="fetching"), Signal(name="left_nonzero")
        p.left = Signal(range(groups + 1), name="left")
        p.ra = Signal(range(max(s.n_in, groups) + 2), name="ra")
        p.ra_plus = Signal.like(p.ra, init=1, name="ra_plus")
        # the lists' read address: ``ra`` while fetching, else 0, kept in a register of its
        # own (set with ``ra``), so no select lies between a flip-flop and the list's read
        p.rd = Signal.like(p.ra, name="rd")
        p.claimed = Signal(range(ENTRY_QUEUE + 1), name="claimed")
        p.d_valid, p.d_rec = Signal(name="d_valid"), Signal(name="d_rec")
        # the entry queue's head and the picker: ``have`` (an entry is queued), the head's
        # lanes already taken (``consumed``)
        p.have, p.pop = Signal(name="have"), Signal(name="pop")
        p.consumed = Signal(lanes, name="consumed")
        # the row register (a spike index) and the issue's state
        p.p_valid, p.p_rec = Signal(name="p_valid"), Signal(name="p_rec")
        p.p_index = Signal(len(self.src.addr), name="p_index")
        p.busy, p.last_group = Signal(name="busy"), Signal(name="last_group")
        p.issue_take = Signal(name="issue_take")
        p.advance = Signal(name="advance")
        return p

    def _list_reader(self, m, mems, p) -> None:
        """Read: the list walk, one entry per cycle at ``ra`` (a register: nothing decided
        from a list's read data comes back to its address) while ``fetching``. The own list
        of the previous step comes first (recurrent layers; it does not depend on the layer
        below, which runs at the same time), then the feedforward list, read as the layer
        below appends to it (overlap): an entry is read once the count shows it (``more``:
        ``ra != count``, from registers: ``more_r`` is ``ra != count`` of the cycle before,
        decided a cycle ahead from ``ra``'s next value, and ``ra`` never passes the count,
        so with the source's ``grew`` it tells a new entry without a comparison between the
        source's count and the read), and the walk is done when none is left and
        ``src_final`` (the source's ``final``, a cycle late) says none will come.

        The first read is in the start cycle, at address 0 (the lists are read at 0 while
        not ``fetching``): own entry 0 if there is one, else the source's entry 0 if it has
        one then (the input list; a layer's list is empty as its step starts). Every idle
        cycle sets the reader's registers as that
        read leaves them (taken only once ``fetching``, as the step starts), so the start
        decision reaches nothing of the reader but ``fetching``; that read's tests of the
        count come from registers too (``count_nz``, ``count_ge2``: the count of the cycle
        before, and ``grew``). An entry is read only while
        fewer than :data:`ENTRY_QUEUE` are read and not yet consumed (``claimed``), so the
        queue never overflows."""
        s = self.shape
        src_count, src_final = Signal.like(p.ra, name="src_count"), Signal(name="src_final")
        m.d.comb += src_count.eq(self.src_events.count)
        m.d.sync += src_final.eq(self.src_events.final)
        more_r, more = Signal(name="more_r"), Signal(name="more")
        ne_ra, ne_plus = p.ra != src_count, p.ra_plus != src_count
        ne_0, ne_1 = src_count != 0, src_count != 1
        grew = self.src_events.grew
        m.d.comb += more.eq(more_r | grew)
        # the count's tests for the start cycle's read, from registers: 1 or more entries
        # and 2 or more, a cycle ago, and ``grew``
        nz_r, ge2_r = Signal(name="count_nz"), Signal(name="count_ge2")
        m.d.sync += [nz_r.eq(ne_0), ge2_r.eq(ne_0 & ne_1)]
        count_nz, count_ge2 = nz_r | grew, ge2_r | (nz_r & grew)
        addr = p.rd                                     # Mux(p.fetching, p.ra, 0)
        m.d.comb += [self.src_events.addr.eq(addr), self.src_events.reading.eq(p.fetching),
                     self.src_events.half.eq(p.par)]
        if s.recurrent:
            # the own list of the previous step: its length, and its half of the list
            own, own_one = p.prev_count != 0, p.prev_count == 1
            m.d.comb += [mems.e_rec.addr.eq(Cat(~p.par, addr)), mems.e_rec.en.eq(1)]
        else:
            own = own_one = 0
        read = Signal()
        with m.If(self.idle):
            # the start cycle's read: own entry 0, else the source's entry 0
            first_ff = count_nz
            first = own | first_ff
            # ``ra`` after the start cycle's read (``rd`` takes it as the engine starts)
            p.ra_start = Mux(own, ~own_one, first_ff)
            m.d.sync += [p.d_valid.eq(first), p.d_rec.eq(own), p.claimed.eq(first),
                         p.left.eq(Mux(own, p.prev_count - 1, 0)),
                         p.left_nonzero.eq(own & ~own_one),
                         p.ra.eq(p.ra_start),
                         p.ra_plus.eq(Mux(own, Mux(own_one, 1, 2), Mux(first_ff, 2, 1))),
                         # ``more_r`` for the feedforward list's next ``ra``: 0 after an
                         # own list of one entry, 1 after entry 0 (no own list), 0 with
                         # none read; a longer own list sets it again as it ends
                         more_r.eq(Mux(own_one, count_nz, count_ge2))]
        with m.Else():
            m.d.sync += [p.d_valid.eq(read), p.d_rec.eq(p.left_nonzero),
                         p.claimed.eq(p.claimed + read - p.pop), more_r.eq(ne_ra)]
        with m.If(p.fetching):
            with m.If(p.left_nonzero):                      # the own list
                m.d.comb += read.eq(p.claimed != ENTRY_QUEUE)
                with m.If(read):
                    last_own = p.left == 1
                    m.d.sync += [p.left.eq(p.left - 1), p.left_nonzero.eq(~last_own),
                                 p.ra.eq(Mux(last_own, 0, p.ra_plus)),
                                 p.rd.eq(Mux(last_own, 0, p.ra_plus)),
                                 p.ra_plus.eq(Mux(last_own, 1, p.ra_plus + 1)),
                                 more_r.eq(Mux(last_own, ne_0, ne_plus))]
            with m.Else():                                  # the feedforward list
                m.d.comb += read.eq(more & (p.claimed != ENTRY_QUEUE))
                with m.If(read):
                    m.d.sync += [p.ra.eq(p.ra_plus), p.rd.eq(p.ra_plus),
                                 p.ra_plus.eq(p.ra_plus + 1), more_r.eq(ne_plus)]
                with m.If(~more & src_final):               # done
                    m.d.sync += [p.fetching.eq(0), p.rd.eq(0)]
        # the entry on the read data: read while fetching (or in the start cycle)
        p.d_in = Signal(name="d_in")
        m.d.comb += p.d_in.eq(p.d_valid & p.fetching)

    def _entry_queue(self, m, mems, p) -> None:
        """The entry queue: the entries read, registered as they leave the list's block RAM
        (no logic behind its output but the slot's select), :data:`ENTRY_QUEUE` slots that
        shift towards the head (``q[0]``, a register, so the picker starts from flip-flops).
        An entry read in cycle ``c`` is in the queue from ``c + 2``."""
        s = self.shape
        layout = data.StructLayout({"entry": event_layout(self.lanes), "rec": 1})
        incoming = Signal(layout)
        m.d.comb += [incoming.entry.eq(self.src_events.data), incoming.rec.eq(p.d_rec)]
        if s.recurrent:
            with m.If(p.d_rec):
                m.d.comb += incoming.entry.eq(mems.e_rec.data)
        p.q = [Signal(layout, name=f"q{k}") for k in range(ENTRY_QUEUE)]
        occ = Signal(range(ENTRY_QUEUE + 1), name="occ")
        # the occupancy's successors and tests come from the register; ``pop`` and
        # ``d_in`` (late: the picker's decision) only select among them (no adder after them)
        same = p.d_in == p.pop
        m.d.sync += [occ.eq(Mux(same, occ, Mux(p.d_in, occ + 1, occ - 1))),
                     p.have.eq(Mux(same, occ != 0, p.d_in | (occ != 1)))]
        for k, slot in enumerate(p.q):
            # the entry read lands here: the slot after the entries that stay
            fill = p.d_in & Mux(p.pop, occ == k + 1, occ == k)
            if k + 1 < ENTRY_QUEUE:
                with m.If(p.pop & (occ > k + 1)):           # the entry behind moves up
                    m.d.sync += slot.eq(p.q[k + 1])
                with m.Elif(fill):
                    m.d.sync += slot.eq(incoming)
            else:
                with m.If(fill):
                    m.d.sync += slot.eq(incoming)

    def _picker(self, m, p) -> None:
        """The picker and the row register: the head entry yields its spikes one per
        ``take``, lowest lane first; a spike taken waits in the row register (``p_index``)
        for the issue. The head leaves the queue (``pop``) with its last spike."""
        head = p.q[0]
        m.d.comb += p.issue_take.eq(p.p_valid & (~p.busy | p.last_group))
        take = Signal()
        m.d.comb += take.eq(p.have & (~p.p_valid | p.issue_take))
        remaining, lowest = Signal(self.lanes, name="remaining"), Signal(self.lanes,
                                                                         name="lowest")
        bit = Signal(max(1, p.lane_bits))
        m.d.comb += [remaining.eq(head.entry.mask & ~p.consumed),
                     lowest.eq(remaining & -remaining),
                     p.pop.eq(take & ((remaining & ~lowest) == 0))]
        lowest_set_bit(m, remaining, bit)
        spike_index = Cat(bit, head.entry.group) if p.lane_bits else head.entry.group
        with m.If(take):
            m.d.sync += [p.p_valid.eq(1), p.p_rec.eq(head.rec), p.p_index.eq(spike_index),
                         p.consumed.eq(Mux(p.pop, 0, p.consumed | lowest))]
        with m.Elif(p.issue_take):
            m.d.sync += p.p_valid.eq(0)
        # feedforward spikes consumed: clear them in the source's bitmap (the core's input)
        m.d.comb += [self.src.addr.eq(p.p_index), self.src.en.eq(p.issue_take & ~p.p_rec),
                     self.src.last.eq(1)]

    def _issue(self, m, mems, p) -> None:
        """Issue: the fan-out rows ``g * fan_in + i`` of the spike, one group per cycle;
        stage 1: the fan-out word leaves the block RAMs; stage 1a: registered as it is (a
        block RAM's output is slow, and at SHD size the RAMs spread over the die: a register
        with one load, which placement can put beside them); stage 1b: registered again
        (beside its consumers), with the slot pointer of the spike
        and that pointer minus R, both added to the group's base address; stage 2: each
        lane's ring address ``base + (t - lag + D) mod R`` (the wrap decided on the slot, the
        address picked from two additions side by side), registered: it addresses the ring
        read and is compared with the write-back's (read-during-write logic) in one cycle."""
        s, groups, slots, syn = self.shape, p.groups, p.slots, mems.syn
        row = Signal(range(groups * p.fan_in + 1))
        g = Signal(range(groups + 1))
        base = Signal(range(groups * slots + 1))
        rec_i = Signal()
        with m.If(p.busy & ~p.last_group):      # last_group (a register): g == groups - 1
            m.d.sync += [row.eq(row + p.fan_in), g.eq(g + 1), base.eq(base + slots),
                         p.last_group.eq(g == max(0, groups - 2))]
        with m.Elif(p.issue_take):
            m.d.sync += [p.busy.eq(1), row.eq(p.p_index + Mux(p.p_rec, s.n_in, 0)), g.eq(0), base.eq(0), rec_i.eq(p.p_rec),
                         p.last_group.eq(int(groups == 1))]
        with m.Else():
            m.d.sync += p.busy.eq(0)
        m.d.comb += [syn.addr.eq(row), syn.en.eq(1)]
        p.v1, rec0, p.v1b = Signal(name="v1"), Signal(name="rec0"), Signal(name="v1b")
        p.v1a, rec1 = Signal(name="v1a"), Signal(name="rec1")
        base0, base1 = Signal.like(base), Signal.like(base)
        ptr_lag = Signal.like(p.ptr)
        ptr_lag_minus = Signal(signed(len(p.ptr) + 1))
        base_lag = Signal(range(groups * slots + slots))
        base_lag_minus = Signal(signed(len(base_lag) + 1))
        m.d.sync += [p.v1.eq(p.busy & p.events_phase), rec0.eq(rec_i), base0.eq(base),
                     p.v1a.eq(p.v1), rec1.eq(rec0), base1.eq(base0),
                     p.v1b.eq(p.v1a),
                     ptr_lag.eq(Mux(rec1, p.ptr_prev, p.ptr)),
                     ptr_lag_minus.eq(Mux(rec1, p.ptr_prev, p.ptr) - slots),
                     base_lag.eq(base1 + Mux(rec1, p.ptr_prev, p.ptr)),
                     base_lag_minus.eq(base1 + Mux(rec1, p.ptr_prev, p.ptr) - slots)]
        p.v2 = Signal(name="v2")
        m.d.sync += p.v2.eq(p.v1b)
        p.event_addr2 = [Signal(range(groups * slots + 1), name=f"addr2_{l}")
                         for l in range(self.lanes)]
        p.w2 = [Signal(signed(s.w_bits), name=f"w2_{l}") for l in range(self.lanes)]
        for l in range(self.lanes):
            d1a = Signal(unsigned(s.d_bits), name=f"d1a_{l}")
            w1a = Signal(signed(s.w_bits), name=f"w1a_{l}")
            d1b = Signal(unsigned(s.d_bits), name=f"d1b_{l}")
            w1b = Signal(signed(s.w_bits), name=f"w1b_{l}")
            m.d.sync += [d1a.eq(syn.d[l]), w1a.eq(syn.w[l]), d1b.eq(d1a), w1b.eq(w1a)]
            total = Signal(range(2 * slots + 1), name=f"slot_sum{l}")
            wrapped = Signal(signed(len(total) + 1), name=f"slot_wrapped{l}")
            m.d.comb += [total.eq(ptr_lag + d1b), wrapped.eq(ptr_lag_minus + d1b)]
            m.d.sync += [p.event_addr2[l].eq(Mux(wrapped < 0, base_lag + d1b,
                                                 base_lag_minus + d1b)),
                         p.w2[l].eq(w1b)]

    def _read_modify_write(self, m, mems, p) -> None:
        """Stage 2: ring read; stage 3: ring data registered, hazards found; stage 4: add and
        write back (``ring_wr_event``: address and sum per lane). Operation n reads its slot
        before operations n-1 and n-2 have written theirs: when it addresses the same slot
        as either, their sum is forwarded instead (the newer one first)."""
        s = self.shape
        p.v3, p.v4 = Signal(name="v3"), Signal(name="v4")
        m.d.sync += [p.v3.eq(p.v2), p.v4.eq(p.v3)]
        addr_shape = range(p.groups * p.slots + 1)
        p.ring_wr_event = []
        for l in range(self.lanes):
            addr3, addr4, addr5, addr6 = (Signal(addr_shape, name=f"addr{k}_{l}")
                                          for k in (3, 4, 5, 6))
            w3, w4 = (Signal(signed(s.w_bits), name=f"w{k}_{l}") for k in (3, 4))
            data4, sum4, sum5, sum6 = (Signal(signed(s.acc_bits), name=f"{n}_{l}")
                                       for n in ("data4", "sum4", "sum5", "sum6"))
            v5, v6, hit1, hit2 = (Signal(name=f"{n}_{l}") for n in ("v5", "v6", "hit1", "hit2"))
            m.d.sync += [addr3.eq(p.event_addr2[l]), w3.eq(p.w2[l]),
                         addr4.eq(addr3), w4.eq(w3), data4.eq(mems.ring_rd[l].data),
                         hit1.eq(p.v4 & (addr3 == addr4)), hit2.eq(v5 & (addr3 == addr5)),
                         addr5.eq(addr4), sum5.eq(sum4), v5.eq(p.v4),
                         addr6.eq(addr5), sum6.eq(sum5), v6.eq(v5)]
            m.d.comb += sum4.eq(Mux(hit1, sum5, Mux(hit2, sum6, data4)) + w4)
            p.ring_wr_event.append((addr4, sum4))

    def _neuron_pass(self, m, mems, p, params) -> None:
        """The neuron pass: one visit of each group (``ng``), its slot ``naddr0`` read (and
        cleared), through the LIF lanes; the write-back stage writes the membrane (and
        score), emits the spike word and appends it to the spike list. Output back-pressure
        (``advance`` low) freezes the pass."""
        s, lanes, emit, advance, groups = self.shape, self.lanes, self.emit, p.advance, p.groups
        m.d.comb += advance.eq(~emit.valid | emit.ready)
        p.n_issuing = Signal(name="n_issuing")
        p.ng = Signal(range(groups + 1), name="ng")
        p.naddr0 = Signal(range(groups * p.slots + 1), name="naddr0")   # group ng's slot ptr
        latency = LifUnit.latency
        # pipeline registers of stages 1 .. latency + 1 (the write-back stage)
        pv = [p.n_issuing] + [Signal(name=f"nv{k}") for k in range(1, latency + 2)]
        p.pg = [p.ng] + [Signal.like(p.ng, name=f"ng{k}") for k in range(1, latency + 2)]
        p.pa = [p.naddr0] + [Signal.like(p.naddr0, name=f"na{k}") for k in range(1, latency + 2)]
        p.pv, p.wb = pv, latency + 1
        with m.If(advance):
            for k in range(1, latency + 2):
                m.d.sync += [pv[k].eq(pv[k - 1] & p.neurons_phase), p.pg[k].eq(p.pg[k - 1]),
                             p.pa[k].eq(p.pa[k - 1])]
            with m.If(p.n_issuing):
                m.d.sync += [p.ng.eq(p.ng + 1), p.naddr0.eq(p.naddr0 + p.slots)]
                with m.If(p.ng == groups - 1):
                    m.d.sync += p.n_issuing.eq(0)
        for port in [mems.v_rd] + ([mems.b_rd] if s.bias else []):
            m.d.comb += [port.addr.eq(p.ng), port.en.eq(advance)]
        p.write_back, p.written = Signal(name="write_back"), Signal(name="written")
        m.d.comb += p.write_back.eq(pv[p.wb] & advance)
        with m.If(advance):
            m.d.sync += p.written.eq(p.write_back)    # written: the emit register is loaded
        spike_bits = self._lif_lanes(
            m, mems, en=advance, i_syn=[rd.data for rd in mems.ring_rd], clearing=p.clearing,
            params=params, old_scores=mems.sc_rd.data if mems.sc_rd is not None else None)
        # the memory writes of the write-back stage do not wait on ``advance`` (the output
        # back-pressure, a long path): a frozen pass writes the same value to the same row
        # again (its stages, the LIF lanes and the read data hold), which changes nothing;
        # the spike word, the list entry and its count wait
        p.wb_write = pv[p.wb]
        for port in [mems.v_wr] + ([] if p.is_lif else [mems.sc_wr]):
            m.d.comb += [port.addr.eq(Mux(p.clearing, p.clear_addr, p.pg[p.wb])),
                         port.en.eq(Mux(p.clearing, p.clear_addr < groups, p.wb_write))]
        # emit register and the spike list
        word = Signal(lanes)
        m.d.comb += word.eq(spike_bits & self._lane_mask(p.pg[p.wb]))
        with m.If(emit.valid & emit.ready):
            m.d.sync += emit.valid.eq(0)
        if p.is_lif:
            e_wr, e_rd = mems.e_wr, mems.e_rd
            with m.If(p.write_back & (word != 0)):
                m.d.sync += [emit.valid.eq(1), emit.payload.kind.eq(OutKind.SPIKE),
                             emit.payload.unit.eq(p.pg[p.wb] * lanes),
                             emit.payload.bits.eq(word), p.own_count.eq(p.own_count + 1)]
            m.d.sync += self.events.grew.eq(p.write_back & (word != 0))     # as own_count
            # the layer above reads the list of its step (``half``): this step's (empty as
            # the step starts) or, while this layer has gone on to the next step, the
            # previous one, complete; the count shows while it walks, else 0 (so its
            # look-ahead sees no stale entry). The count's select takes ``half`` a cycle
            # late (``half_q``, a register beside it): the reader's parity changes only as
            # its step ends, and it walks from the cycle after its next start at the
            # earliest, so while it walks ``half_q`` is ``half`` (on the iCE40UP5K the
            # route from the reader's parity register into this select was the ring demo
            # core's critical path). ``final`` is registered by the reader in the start
            # cycle too, so it takes ``half`` as it is.
            half_q = Signal(name="reader_half")
            m.d.sync += half_q.eq(self.events.half)
            current = self.events.half == p.par
            m.d.comb += [e_wr.addr.eq(Cat(p.par, p.own_count)), e_wr.data.mask.eq(word),
                         e_wr.data.group.eq(p.pg[p.wb]), e_wr.en.eq(p.write_back & (word != 0)),
                         e_rd.en.eq(1),
                         self.events.count.eq(Mux(self.events.reading,
                                                  Mux(half_q == p.par, p.own_count,
                                                      p.prev_count), 0)),
                         self.events.final.eq(~current),
                         self.events.data.eq(e_rd.data),
                         e_rd.addr.eq(Cat(self.events.half, self.events.addr))]

    def _ring_ports(self, m, mems, p) -> None:
        """The ring ports, by phase: the neuron pass reads slot ``t`` and clears it, CLEAR
        zeroes every slot, the events phase reads and writes back its operations."""
        for l in range(self.lanes):
            rd, wr = mems.ring_rd[l], mems.ring_wr[l]
            with m.If(p.neurons_phase):
                m.d.comb += [rd.addr.eq(p.naddr0), rd.en.eq(p.advance),
                             wr.addr.eq(p.pa[p.wb]), wr.data.eq(0), wr.en.eq(p.wb_write)]
            with m.Elif(p.clearing):
                m.d.comb += [wr.addr.eq(p.clear_addr), wr.data.eq(0),
                             wr.en.eq(p.clear_addr < p.groups * p.slots)]
            with m.Else():
                m.d.comb += [rd.addr.eq(p.event_addr2[l]), rd.en.eq(1),
                             wr.addr.eq(p.ring_wr_event[l][0]),
                             wr.data.eq(p.ring_wr_event[l][1]), wr.en.eq(p.v4)]

    def _ring_modes(self, m, mems, p) -> None:
        """The modes (:meth:`LayerEngine._modes`): RUN is the events phase (``EVENTS``, until
        the list walk and the pipeline are done) then the neuron pass (``NEURONS``, which
        advances the ring pointers); CLEAR zeroes every slot, membrane and score."""
        s, slots, emit = self.shape, p.slots, self.emit
        # v1 .. v4 shift unconditionally, so their OR is a register fed by what enters them
        in_flight = Signal()
        m.d.sync += in_flight.eq((p.busy & p.events_phase) | p.v1 | p.v1a | p.v1b | p.v2
                                 | p.v3)
        pipeline_busy = p.have | p.p_valid | p.busy | in_flight
        score = None
        if not p.is_lif:
            scoring, score_read = Signal(), Signal()
            lane = Signal(range(self.lanes + 1))
            m.d.comb += [mems.sc_rd.addr.eq(Mux(scoring, p.ng, p.pg[LifUnit.latency])),
                         mems.sc_rd.en.eq(Mux(scoring, score_read, p.advance))]
            score = (p.ng, lane, scoring, score_read, mems.sc_rd)

        def on_run():
            # this step's list starts empty; the previous one is read first
            m.d.sync += [p.fetching.eq(1), p.rd.eq(p.ra_start), p.consumed.eq(0),
                         p.own_count.eq(0), p.events_phase.eq(1)]
            return "EVENTS"

        def run_states():
            with m.State("EVENTS"):
                # ``hold``: the layer above has not started this step yet (the core's step
                # pipeline); the pass would write this step's list and outputs
                with m.If(~p.fetching & ~pipeline_busy & ~self.hold):
                    m.d.sync += [p.n_issuing.eq(1), p.ng.eq(0), p.naddr0.eq(p.ptr),
                                 p.events_phase.eq(0), p.neurons_phase.eq(1)]
                    m.next = "NEURONS"
            with m.State("NEURONS"):
                with m.If(~p.n_issuing & ~Cat(*p.pv[1:]).any() & ~p.written & ~emit.valid):
                    m.d.sync += [p.ptr.eq(Mux(p.ptr == slots - 1, 0, p.ptr + 1)),
                                 p.ptr_prev.eq(p.ptr), p.neurons_phase.eq(0),
                                 p.par.eq(~p.par), p.prev_count.eq(p.own_count)]
                    m.next = "IDLE"

        self._modes(m, counter=p.clear_addr, clear_rows=max(p.groups * slots, p.groups),
                    clearing=p.clearing, clear_register=True, on_run=on_run,
                    run_states=run_states, score=score,
                    on_clear=[p.own_count.eq(0), p.ptr.eq(0), p.ptr_prev.eq(slots - 1),
                              p.par.eq(0), p.prev_count.eq(0)])
