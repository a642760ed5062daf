"""The neuromorphic core: input/config/output streams around a chain of layer engines.

Protocol (payload layouts and kinds in :mod:`delayhw.gateware.wire`):

* ``inputs``: ``SPIKE(i)`` marks channel ``i`` as spiking in the current step (an ``i`` of
  ``n_inputs`` or more is counted in ``status.dropped_inputs`` and ignored); ``STEP`` ends
  the step: every layer runs once, the core emits that step's spikes and then ``STEP``;
  ``SAMPLE`` ends the sample: the core emits one ``SCORE`` per readout unit, then
  ``SAMPLE``, and clears all state for the next sample. Scores are exact for samples of up
  to ``shape.max_steps`` steps (``shape.score_bits`` wide); the ``SAMPLE`` output event's
  ``value`` is 1 when the sample had more steps, so its scores may have wrapped, else 0.
  Inputs are double-buffered: while a step computes, the next step's events are accepted
  into the other buffer; a STEP (or SAMPLE) accepted meanwhile waits until the step in
  progress has finished (``ready`` stays low until then), and the next step starts at once.
* ``outputs``: ``SPIKE(layer, unit)`` in layer order and, within a layer, in unit order;
  ``STEP``; ``SCORE(unit, value)``; ``SAMPLE``. Back-pressure stalls the core; nothing is
  dropped or reordered.
* ``config``: a write of one weight, delay, bias or layer parameter (address map in
  :func:`~delayhw.gateware.wire.config_address`), accepted while idle; it takes effect
  within 5 cycles, and inputs are held off (``ready`` low) while a write is in flight. A
  write that is out of range for the core (bad layer, field, row, column or value) is
  ignored and counted in ``status.config_errors`` (within 5 cycles). Configuration survives reset; state
  (membranes, delay lines, spikes, scores) is cleared by reset and after every sample.
"""

from __future__ import annotations

from amaranth import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from delayhw.spec import Model

from . import wire
from .layer import CONFIG_LATENCY, Mode, emit_layout, event_layout, lowest_set_bit
from . import schemes
from .memories import KindMemory, bitmap_attrs, tagged_memories
from .shape import CoreShape, memory_depth
from .wire import INDEX_BITS, KIND_BITS, LAYER_BITS, InKind, OutKind


def delay_chain(m: Module, signal: Signal, cycles: int, name: str) -> list[Signal]:
    """``[signal, signal a cycle later, ..., signal cycles later]``: a chain of registers
    (stage ``n`` named ``{name}_d{n}``)."""
    chain = [signal]
    for n in range(cycles):
        chain.append(Signal.like(signal, name=f"{name}_d{n + 1}"))
        m.d.sync += chain[-1].eq(chain[-2])
    return chain


def count_saturating(m: Module, counter: Signal, event) -> None:
    """``counter`` counts the cycles ``event`` is high, stopping at its all-ones value."""
    with m.If(event & (counter != (1 << len(counter)) - 1)):
        m.d.sync += counter.eq(counter + 1)


# the payload layouts, from the one wire-format table (gateware/wire.py)
INPUT_LAYOUT = wire.INPUT.layout()
CONFIG_LAYOUT = wire.CONFIG.layout()
STATUS_LAYOUT = wire.STATUS.layout()


def output_layout(score_bits: int) -> data.StructLayout:
    """An output event (:func:`wire.output`); ``value`` is :attr:`CoreShape.score_bits` wide."""
    return wire.output(score_bits).layout()


def queue_layout(lanes: int, score_bits: int) -> data.StructLayout:
    """An entry of the output queue: an engine's item tagged with its layer."""
    return data.StructLayout({"item": emit_layout(lanes, score_bits), "layer": LAYER_BITS})


class SpikeSerializer(wiring.Component):
    """Expands queue entries into output events: a spike word with ``n`` bits set becomes
    ``n`` ``SPIKE`` events, lowest unit first (a word with none is dropped); other entries
    pass through unchanged.

    An entry is taken into a register and expanded from there, so ``o`` is driven from
    flip-flops and ``i.ready`` depends only on this register and ``o.ready``, never on the
    entry presented (which comes from the queue's block RAM)."""

    def __init__(self, lanes: int, score_bits: int):
        self.lanes = lanes
        super().__init__({"i": In(stream.Signature(queue_layout(lanes, score_bits))),
                          "o": Out(stream.Signature(output_layout(score_bits)))})

    def elaborate(self, platform):
        m = Module()
        held = Signal.like(self.i.payload)      # the entry being expanded
        item = held.item
        remaining = Signal(self.lanes)          # its spike bits not sent yet
        lowest = Signal(range(max(2, self.lanes)))
        lowest_set_bit(m, remaining, lowest)
        is_spike = item.kind == OutKind.SPIKE
        last = ~is_spike | ((remaining & (remaining - 1)) == 0)     # its final event
        m.d.comb += [self.o.payload.kind.eq(item.kind), self.o.payload.layer.eq(held.layer),
                     self.o.payload.value.eq(item.value),
                     self.o.payload.unit.eq(item.unit + Mux(is_spike, lowest, 0)),
                     self.i.ready.eq(~self.o.valid | (self.o.ready & last))]
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += remaining.eq(remaining & (remaining - 1))    # lowest bit sent
            with m.If(last):
                m.d.sync += self.o.valid.eq(0)
        with m.If(self.i.valid & self.i.ready):
            entry = self.i.payload.item
            m.d.sync += [held.eq(self.i.payload), remaining.eq(entry.bits),
                         self.o.valid.eq((entry.kind != OutKind.SPIKE) | (entry.bits != 0))]
        return m


class Core(wiring.Component):
    """A whole network in hardware (see the module docstring for the protocol).

    ``Core(shape)`` builds empty memories, to be loaded through ``config``;
    ``Core(shape, model)`` (or :meth:`from_model`) initialises them from ``model`` at
    elaboration, so the bitstream carries the network.

    Built from named stages: the layer engines (:func:`build_engines`), the input banks
    (:class:`InputBanks`), the output queue (:class:`OutputQueue`), the configuration
    pipeline (:class:`ConfigPipeline`) and the sequencer (:class:`Sequencer`).
    """

    def __init__(self, shape: CoreShape, model: Model | None = None):
        if model is not None:
            shape.check_model(model)
        self.shape = shape
        self.model = model
        super().__init__({
            "inputs": In(stream.Signature(INPUT_LAYOUT)),
            "outputs": Out(stream.Signature(output_layout(shape.score_bits))),
            "config": In(stream.Signature(CONFIG_LAYOUT)),
            "status": Out(STATUS_LAYOUT),
        })
        #: simulation probes (not ports): high in the cycle a step starts (its STEP taken),
        #: and in the cycle it has finished (its STEP marker queued)
        self.step_start, self.step_done = Signal(), Signal()

    @staticmethod
    def from_model(model: Model, lanes: int = 1, scheme: str = "fifo") -> "Core":
        return Core(CoreShape.from_model(model, lanes, scheme), model)

    def elaborate(self, platform):
        m = Module()
        shape = self.shape
        engines = build_engines(m, shape, self.model)
        banks = InputBanks(shape, engines)
        queue = OutputQueue(shape)
        config = ConfigPipeline(len(engines))
        sequencer = Sequencer(shape, engines)
        banks.build(m, self.inputs.payload.index)
        queue.build(m, engines, self.outputs, sequencer.overlong)
        config.build(m, self.config, engines)
        sequencer.build(m, self, banks, queue, config.quiet)
        m.d.comb += [self.status.dropped_inputs.eq(banks.dropped),
                     self.status.config_errors.eq(config.errors)]
        return m


def build_engines(m: Module, shape: CoreShape, model: Model | None) -> list:
    """The layer engines of ``shape``'s scheme (submodules ``layer{k}``, contents from
    ``model`` if any), each reading the spikes of the one below it."""
    engine_class = schemes.engine(shape.scheme)
    spram = shape.spram_layers()
    engines = []
    for k, layer_shape in enumerate(shape.layers):
        contents = model.layers[k] if model is not None else None
        engine = engine_class(layer_shape, shape.lanes, contents, score_bits=shape.score_bits,
                              synapse_spram=spram[k])
        m.submodules[f"layer{k}"] = engine
        engines.append(engine)
    for k in range(1, len(engines)):
        wiring.connect(m, engines[k].src, engines[k - 1].spikes)
        if engine_class.event_driven:
            wiring.connect(m, engines[k].src_events, engines[k - 1].events)
    return engines


class InputBanks:
    """Stage: the input spikes of a step, double-buffered. While layer 0 reads bank
    ``~in_bank`` (the step being computed), the input stream fills bank ``in_bank`` with the
    next step's events. One bitmap memory per bank, so the fill (set) and the consumption
    (clear) never share a port. The banks swap as a step starts (``starting``: ``in_bank``
    flips); every bank select is a register or layer 0's ``idle``, never ``starting`` (a long
    path from the sequencer). Event-driven engines also read a step's input channels as a
    list, in arrival order (entry ``2 * n + bank``); the bitmap drops a channel's repeated
    events.

    A SPIKE accepted (``spike_q``, ``spike_index``: registered, in range) sets its bit the
    next cycle; layer 0's last-pass reads of the run bank clear their bit a cycle later;
    ``walking`` zeroes both banks (the CLEAR walk, ``clear_addr``). Out-of-range SPIKEs
    (``spike_bad_q``) are counted in ``dropped``."""

    def __init__(self, shape: CoreShape, engines: list):
        self.shape, self.engines = shape, engines
        self.event_driven = type(engines[0]).event_driven
        self.in_bank = Signal()              # bank the input stream fills
        self.starting = Signal()             # the core takes a step this cycle (banks swap)
        self.walking = Signal()              # the CLEAR walk over both banks
        self.clear_addr = Signal(range(shape.n_inputs + 1))
        #: the bitmaps may hold set bits: after reset, or events came after a sample's last
        #: STEP (event-driven engines; else always walked). Otherwise every bit is clear
        #: after a sample (layer 0 clears each listed event it takes) and the CLEAR walk
        #: skips them
        self.dirty = Signal(init=1)
        self.spike_q, self.spike_bad_q = Signal(), Signal()
        self.spike_index = Signal(INDEX_BITS)
        self.dropped = Signal(wire.COUNTER_BITS)
        if self.event_driven:
            self.ev_counts = [Signal(range(shape.n_inputs + 2), name=f"ev_count{b}")
                              for b in range(2)]
            # count + 1, kept in a register: a new event (decided from the bitmap's block
            # RAM output) takes it without an adder on that path
            self.ev_nexts = [Signal(range(shape.n_inputs + 2), init=1, name=f"ev_next{b}")
                             for b in range(2)]

    def clear(self) -> list:
        """The statements that start the CLEAR walk over the bitmaps (from ``clear_addr``)
        and empty the banks' event lists (the sequencer's CLEAR)."""
        if not self.event_driven:
            return [self.clear_addr.eq(0)]
        # a walk that starts at n_inputs writes nothing
        return ([self.clear_addr.eq(Mux(self.dirty, 0, self.shape.n_inputs))]
                + [count.eq(0) for count in self.ev_counts]
                + [count_next.eq(1) for count_next in self.ev_nexts])

    def ended(self) -> list:
        """The statements of a sample's end: whether its bitmaps need the CLEAR walk (events
        in the fill bank came after the last STEP)."""
        if not self.event_driven:
            return []
        in_bank, counts = self.in_bank, self.ev_counts
        return [self.dirty.eq(Mux(in_bank, counts[1], counts[0]) != 0)]

    def accept(self, index) -> list:
        """The statements that take a SPIKE of channel ``index`` (the sequencer's, in the
        cycle it accepts one)."""
        in_range = index < self.shape.n_inputs
        return [self.spike_q.eq(in_range), self.spike_bad_q.eq(~in_range),
                self.spike_index.eq(index)]

    def build(self, m: Module, index) -> None:
        """``index``: the presented input event's channel (the fill bank reads its bit, which
        tells a repeated SPIKE a cycle later)."""
        shape, in_bank, src0 = self.shape, self.in_bank, self.engines[0].src
        # ``input_ram="lut"`` (ECP5 builds) asks for LUT RAM (the bitmaps only, not the event
        # list of :meth:`_build_lists`): a block RAM's 5.8 ns clock-to-output ahead of the ring's
        # new-event decision held the SHD-size ring x8 at 87.7 MHz on the ECP5-85F, 93.8 with
        # LUT RAM. Otherwise an iCE40 build (``memory="spram"``) asks for block RAM (a 64-row
        # bitmap in flip-flops reads through a 6-level mux) and elsewhere synthesis chooses.
        attrs = ({"ram_style": "distributed"} if shape.input_ram == "lut"
                 else bitmap_attrs(shape.n_inputs) if shape.memory == "spram" else None)
        in_mems = [KindMemory("input_bitmap", shape=1, depth=memory_depth(shape.n_inputs),
                              init=[], attrs=attrs) for _ in range(2)]
        m.submodules.in_mem0, m.submodules.in_mem1 = in_mems
        in_rds = [mem.read_port() for mem in in_mems]
        in_wrs = [mem.write_port() for mem in in_mems]
        m.d.comb += src0.ready.eq(1)           # the run bank is complete when a step starts
        if not self.event_driven:
            # layer 0 walks the run bank's bits (``read_bank``: the bank of the read answered
            # this cycle); an event-driven engine reads the event list instead and only
            # clears bits through ``src0`` (``src0.data`` stays 0)
            read_bank = Signal()
            m.d.sync += read_bank.eq(~in_bank)
            m.d.comb += src0.data.eq(Mux(read_bank, in_rds[1].data, in_rds[0].data))
        clear_q, spike_bank, clear_bank = Signal(), Signal(), Signal()
        clear_index = Signal(INDEX_BITS)
        m.d.comb += spike_bank.eq(in_bank)      # the fill bank, as the SPIKE is written
        m.d.sync += [self.spike_q.eq(0), self.spike_bad_q.eq(0),
                     clear_q.eq(src0.en & src0.last), clear_index.eq(src0.addr),
                     clear_bank.eq(~in_bank)]
        # the fill bank is read at the presented event's index (its bit tells a repeated
        # SPIKE, a cycle later), the run bank by layer 0 if it walks the bits (else at that
        # index too: no address select, whose path from layer 0 limited the SHD-size ring x16
        # to 73 MHz with LUT RAM bitmaps); no SPIKE is accepted in the cycle the banks swap,
        # so the select is the register ``in_bank`` alone
        for b, (rd, wr) in enumerate(zip(in_rds, in_wrs)):
            if self.event_driven:
                m.d.comb += [rd.addr.eq(index), rd.en.eq(1)]
            else:
                runs = in_bank != b
                m.d.comb += [rd.addr.eq(Mux(runs, src0.addr, index)),
                             rd.en.eq(Mux(runs, src0.en, 1))]
            with m.If(self.walking):
                m.d.comb += [wr.addr.eq(self.clear_addr),
                             wr.en.eq(self.clear_addr < shape.n_inputs)]
            with m.Elif(clear_q & (clear_bank == b)):
                m.d.comb += [wr.addr.eq(clear_index), wr.en.eq(1)]
            with m.Elif(self.spike_q & (spike_bank == b)):
                m.d.comb += [wr.addr.eq(self.spike_index), wr.data.eq(1), wr.en.eq(1)]
        count_saturating(m, self.dropped, self.spike_bad_q)
        with m.If(self.starting):
            m.d.sync += in_bank.eq(~in_bank)
        if self.event_driven:
            self._build_lists(m, spike_bank, in_rds)

    def _build_lists(self, m: Module, spike_bank, in_rds) -> None:
        """The input event lists: a registered SPIKE whose bit was clear when it was accepted
        (its bank's bitmap read then) and that does not repeat the SPIKE of the cycle before
        (whose bit is being written as it was read) joins its bank's list."""
        shape, in_bank, spike_index = self.shape, self.in_bank, self.spike_index
        ev_counts, ev_nexts = self.ev_counts, self.ev_nexts
        # synthesis chooses (in LUT RAM with ``input_ram="lut"`` too, the SHD-size ring x8 on
        # the ECP5-85F fell from 93.6 / 99.4 / 93.5 MHz at seeds 1-3 to 90.4 / 87.8 / 82.6,
        # and x16 gained at one seed of three)
        m.submodules.in_events = ev_mem = KindMemory(
            "input_events", shape=event_layout(shape.lanes),
            depth=memory_depth(2 * shape.n_inputs), init=[])
        ev_rd, ev_wr = ev_mem.read_port(), ev_mem.write_port()
        last_q, last_index, new_spike = Signal(), Signal(INDEX_BITS), Signal()
        m.d.sync += [last_q.eq(self.spike_q), last_index.eq(spike_index)]
        # both indices are in range (spike_q): their low bits tell them apart
        index_bits = max(1, (shape.n_inputs - 1).bit_length())
        repeat = last_q & (last_index[:index_bits] == spike_index[:index_bits])
        was_set = Mux(spike_bank, in_rds[1].data, in_rds[0].data)
        m.d.comb += new_spike.eq(self.spike_q & ~was_set & ~repeat)
        lane_bits = (shape.lanes - 1).bit_length()
        src_ev = self.engines[0].src_events
        fill_count = Mux(spike_bank, ev_counts[1], ev_counts[0])
        # layer 0 reads the list of the step it runs while walking it (``reading``, a
        # register: no state decode before the count's select), else (its look-ahead read
        # and the count as it starts) the list of the step that starts next, the fill bank's
        ev_bank, grew = Signal(), Signal()
        m.d.comb += ev_bank.eq(in_bank ^ src_ev.reading)
        # a new event joins the fill bank: the list layer 0 sees while not walking
        m.d.sync += grew.eq(new_spike & ~src_ev.reading)
        m.d.comb += [ev_rd.addr.eq(Cat(ev_bank, src_ev.addr)), ev_rd.en.eq(1),
                     src_ev.data.eq(ev_rd.data),
                     src_ev.count.eq(Mux(ev_bank, ev_counts[1], ev_counts[0])),
                     src_ev.final.eq(1),     # the run bank is complete when a step starts
                     src_ev.grew.eq(grew),
                     ev_wr.addr.eq(Cat(spike_bank, fill_count)),
                     # in range (``new_spike``): the bits above the channel's are 0
                     ev_wr.data.group.eq(spike_index[:index_bits] >> lane_bits),
                     ev_wr.data.mask.eq(Const(1, shape.lanes) << spike_index[:lane_bits]),
                     ev_wr.en.eq(new_spike)]
        for b, (count, count_next) in enumerate(zip(ev_counts, ev_nexts)):
            with m.If(self.starting & (in_bank != b)):      # the bank the next step fills
                m.d.sync += [count.eq(0), count_next.eq(1)]
            with m.Elif(new_spike & (spike_bank == b)):
                m.d.sync += [count.eq(count_next), count_next.eq(count_next + 1)]


class OutputQueue:
    """Stage: the engines' items and the sequencer's STEP/SAMPLE markers (``marker``,
    ``marker_valid``) into the output queue, expanded into output events by the
    :class:`SpikeSerializer`. ``room`` (a register: 2 free entries seen a cycle ago) is the
    engines' ready and gates the markers: an engine's ready stalls every pipeline stage, so
    it must not come through the queue's level logic. Overlapping engines (several layers
    run at once) take turns, lower layer first: a layer emits only after the layers below it
    have emitted everything of the step, so the output stays in layer order."""

    def __init__(self, shape: CoreShape):
        self.shape = shape
        self.marker = Signal(KIND_BITS)      # OutKind of a STEP/SAMPLE marker to enqueue
        self.marker_valid = Signal()
        self.room = Signal()

    def build(self, m: Module, engines: list, outputs, overlong) -> None:
        """``overlong``: the sample had more than ``max_steps`` steps (the SAMPLE marker's
        value)."""
        shape, marker, room = self.shape, self.marker, self.room
        layout = queue_layout(shape.lanes, shape.score_bits)
        m.submodules.queue = queue = fifo.SyncFIFOBuffered(width=layout.size,
                                                           depth=shape.out_fifo_depth)
        m.submodules.serializer = ser = SpikeSerializer(shape.lanes, shape.score_bits)
        m.d.comb += [ser.i.payload.eq(queue.r_data), ser.i.valid.eq(queue.r_rdy),
                     queue.r_en.eq(ser.i.ready)]
        wiring.connect(m, ser.o, wiring.flipped(outputs))
        entry = Signal(layout)
        m.d.sync += room.eq(queue.level + 2 < shape.out_fifo_depth)
        m.d.comb += [queue.w_data.eq(entry), queue.w_en.eq(self.marker_valid & room),
                     entry.item.kind.eq(marker),
                     entry.item.value.eq(Mux(marker == OutKind.SAMPLE, overlong, 0))]
        overlaps = type(engines[0]).overlaps
        lower_valid = Const(0)
        for engine in engines:
            if overlaps:
                m.d.comb += engine.emit.ready.eq(room & ~lower_valid)
                lower_valid = lower_valid | engine.emit.valid
            else:
                m.d.comb += engine.emit.ready.eq(room)
        for k, engine in reversed(list(enumerate(engines))):    # the lowest valid layer wins
            with m.If(engine.emit.valid):
                m.d.comb += [entry.item.eq(engine.emit.payload), entry.layer.eq(k),
                             queue.w_en.eq(engine.emit.ready)]


class ConfigPipeline:
    """Stage: a configuration write, accepted (``config.ready`` is the sequencer's), is
    registered and presented to its engine, which applies it a cycle later and says then
    whether it was bad; that verdict is registered and counted in ``errors`` (no path from
    the write's fields to the counter within one cycle). ``quiet``: no write is in flight,
    so a step never runs on memories that are still being written (the synapse memory
    writes a cycle after its engine applies the write: a step accepted now starts 2 cycles
    later at the earliest, and reads its synapses a cycle after that)."""

    def __init__(self, n_layers: int):
        self.n_layers = n_layers
        self.errors = Signal(wire.COUNTER_BITS)
        self.quiet = Signal()

    def build(self, m: Module, config, engines: list) -> None:
        n_layers = self.n_layers
        cfg = Signal(CONFIG_LAYOUT)
        cfg_valid, cfg_bad, cfg_bad_q = Signal(), Signal(), Signal()
        m.d.sync += cfg_valid.eq(config.valid & config.ready)
        # the write's valid and layer, delayed to the cycle its engine gives the verdict
        cfg_valid_d = delay_chain(m, cfg_valid, CONFIG_LATENCY, "cfg_valid")
        # registered every cycle (no enable from ``ready``, the sequencer's decision: on the
        # iCE40UP5K that enable was the medium ring core's critical path); the engines use
        # it only with ``cfg.en``
        m.d.sync += cfg.eq(config.payload)
        target = Signal(n_layers + 1)       # one-hot layer of the write; top bit: no such layer
        m.d.sync += target.eq(Cat(*(config.payload.addr.layer == k for k in range(n_layers)),
                                  config.payload.addr.layer >= n_layers))
        target_q = delay_chain(m, target, CONFIG_LATENCY, "target")[-1]  # with the verdicts
        m.d.comb += cfg_bad.eq(target_q[n_layers])
        for k, engine in enumerate(engines):
            m.d.comb += [engine.cfg.field.eq(cfg.addr.field), engine.cfg.row.eq(cfg.addr.row),
                         engine.cfg.col.eq(cfg.addr.col), engine.cfg.data.eq(cfg.data),
                         engine.cfg.en.eq(cfg_valid & target[k])]
            with m.If(target_q[k]):
                m.d.comb += cfg_bad.eq(engine.cfg.bad)
        m.d.sync += cfg_bad_q.eq(cfg_valid_d[-1] & cfg_bad)
        count_saturating(m, self.errors, cfg_bad_q)
        m.d.comb += self.quiet.eq(~config.valid & ~Cat(*cfg_valid_d[:-1]).any())


class Sequencer:
    """Stage: the core's state machine. It takes the input stream while the core is idle
    *and while it computes a step* (``accepting``): SPIKEs go to the fill bank
    (:meth:`InputBanks.accept`); a STEP or SAMPLE is held in ``pending_*`` until the step in
    progress has finished, and the stream waits (ready low) meanwhile, up to the cycle
    after the pending STEP is taken (``ready`` comes from registers only, not from the
    decision to start a step). It starts the engines of each step (overlapping engines:
    all at once, else one after the other), queues the STEP marker, walks the readout's
    scores at a SAMPLE and then clears every engine and the input banks (also after
    reset). ``overlong``: the sample has had more than ``max_steps`` steps."""

    def __init__(self, shape: CoreShape, engines: list):
        self.shape, self.engines = shape, engines
        self.steps = Signal(shape.step_bits)  # steps of this sample, saturating at max_steps+1
        self.overlong = Signal()
        self.parity = Signal()               # the step's input bank, toggled as a step ends
        self.all_idle, self.idle = Signal(), Signal()   # every engine idle; the core idle
        self.accepting = Signal()            # the input stream may be taken (see above)
        self.pending_step, self.pending_sample = Signal(), Signal()

    def build(self, m: Module, core: "Core", banks: InputBanks, queue: OutputQueue,
              cfg_quiet) -> None:
        shape, engines, steps = self.shape, self.engines, self.steps
        overlaps = type(engines[0]).overlaps
        parity, all_idle, idle = self.parity, self.all_idle, self.idle
        pending_step, pending_sample, accepting = (self.pending_step, self.pending_sample,
                                                   self.accepting)
        m.d.comb += [engine.parity.eq(parity) for engine in engines]
        m.d.comb += [all_idle.eq(1), self.overlong.eq(steps > shape.max_steps)]
        for engine in engines:
            with m.If(~engine.idle):
                m.d.comb += all_idle.eq(0)
        m.d.comb += core.inputs.ready.eq(accepting & cfg_quiet & ~pending_step
                                         & ~pending_sample)
        m.d.comb += [core.status.busy.eq(~idle | pending_step | pending_sample),
                     core.step_start.eq(banks.starting)]       # probe (simulation only)
        with m.If(banks.starting):
            m.d.sync += pending_step.eq(0)
        event = core.inputs.payload
        with m.If(core.inputs.valid & core.inputs.ready):
            with m.Switch(event.kind):
                with m.Case(InKind.SPIKE):
                    m.d.sync += banks.accept(event.index)
                with m.Case(InKind.STEP):
                    with m.If(~self.overlong):
                        m.d.sync += steps.eq(steps + 1)
                    m.d.sync += pending_step.eq(1)
                with m.Case(InKind.SAMPLE):
                    m.d.sync += pending_sample.eq(1)
                with m.Default():        # reserved kind: counted like a bad index
                    m.d.sync += banks.spike_bad_q.eq(1)

        readout = engines[-1]
        if type(engines[0]).event_driven:
            step_states = self._pipelined_steps(m, core, banks, queue)
        else:
            step_states = self._steps(m, core, banks, queue)
        with m.FSM(init="CLEAR"):
            with m.State("CLEAR"):
                for engine in engines:
                    m.d.comb += [engine.mode.eq(Mode.CLEAR), engine.start.eq(1)]
                m.d.sync += [parity.eq(0), steps.eq(0),
                             pending_step.eq(0), pending_sample.eq(0), banks.walking.eq(1)]
                m.d.sync += banks.clear()
                m.next = "CLEAR_WAIT"
            with m.State("CLEAR_WAIT"):
                with m.If(banks.clear_addr < shape.n_inputs):
                    m.d.sync += banks.clear_addr.eq(banks.clear_addr + 1)
                with m.Elif(all_idle):
                    m.d.sync += banks.walking.eq(0)
                    m.next = "IDLE"
            step_states()
            with m.State("SCORES"):
                m.d.comb += [readout.mode.eq(Mode.SCORES), readout.start.eq(1)]
                m.next = "SCORES_WAIT"
            with m.State("SCORES_WAIT"):
                with m.If(readout.idle):
                    m.next = "SAMPLE_DONE"
            with m.State("SAMPLE_DONE"):
                m.d.comb += [queue.marker.eq(OutKind.SAMPLE), queue.marker_valid.eq(1)]
                with m.If(queue.room):
                    m.d.sync += banks.ended()
                    m.next = "CLEAR"

    def _steps(self, m, core, banks, queue):
        """The step states of engines that run one step at a time (``IDLE``, ``WAIT_k``,
        ``STEP_DONE``): a step starts when the one before has finished (overlapping engines:
        every layer at once, each waiting on its source's ``ready``; else one after the
        other), then its STEP marker is queued. Returns the function that builds them."""
        parity, all_idle, idle, accepting = self.parity, self.all_idle, self.idle, self.accepting
        pending_step, pending_sample = self.pending_step, self.pending_sample
        engines = self.engines
        overlaps = type(engines[0]).overlaps

        def start_step():
            """Take the pending STEP: layer 0 starts on the bank it filled (overlapping
            engines: every layer starts, each waiting on its source's ``ready``)."""
            first = engines if overlaps else engines[:1]
            for engine in first:
                m.d.comb += [engine.mode.eq(Mode.RUN), engine.start.eq(1)]
            m.d.comb += banks.starting.eq(1)
            m.next = f"WAIT_{len(first) - 1}"

        def end_step_or_sample(otherwise=None):
            with m.If(pending_step):
                start_step()
            with m.Elif(pending_sample):
                m.next = "SCORES"
            if otherwise is not None:
                with m.Else():
                    m.next = otherwise

        def states():
            with m.State("IDLE"):
                m.d.comb += [idle.eq(1), accepting.eq(1),
                             core.config.ready.eq(~pending_step & ~pending_sample)]
                end_step_or_sample()
            for k, engine in enumerate(engines):
                if overlaps and k + 1 < len(engines):
                    continue                # all layers run at once: one WAIT state
                with m.State(f"WAIT_{k}"):
                    m.d.comb += accepting.eq(1)
                    # overlapping engines: the last layer may finish before a lower one
                    # has emitted its last word
                    with m.If(all_idle if overlaps else engine.idle):
                        if k + 1 < len(engines):   # the next layer starts as this one ends
                            m.d.comb += [engines[k + 1].mode.eq(Mode.RUN),
                                         engines[k + 1].start.eq(1)]
                            m.next = f"WAIT_{k + 1}"
                        else:
                            m.next = "STEP_DONE"
            with m.State("STEP_DONE"):
                m.d.comb += [accepting.eq(1), queue.marker.eq(OutKind.STEP),
                             queue.marker_valid.eq(1)]
                with m.If(queue.room):
                    m.d.comb += core.step_done.eq(1)
                    m.d.sync += parity.eq(~parity)
                    end_step_or_sample(otherwise="IDLE")
        return states

    def _pipelined_steps(self, m, core, banks, queue):
        """The step state (``IDLE``) of event-driven engines, whose steps pipeline: layer
        ``k`` starts step ``t + 1`` as soon as it has finished step ``t`` and layer ``k - 1``
        has started ``t + 1`` (layer 0: its STEP is in), while the layers above still run
        step ``t``. ``ahead[k]``: layer ``k`` has started a step that layer ``k + 1`` has
        not. A layer's neuron pass is held (``hold``) while it is a step ahead of the top
        layer (``ahead`` set from it upwards), so every layer's outputs, and the STEP marker
        queued as the top layer finishes a step, stay in step order, and a layer is never
        two steps ahead of the next (its spike list keeps two steps). Returns the function
        that builds the state."""
        parity, all_idle, idle, accepting = self.parity, self.all_idle, self.idle, self.accepting
        pending_step, pending_sample = self.pending_step, self.pending_sample
        engines = self.engines
        top = len(engines) - 1
        ahead = [Signal(name=f"ahead{k}") for k in range(top)]
        marker_due = Signal()           # the top layer has started a step not yet marked
        starts = [Signal(name=f"start{k}") for k in range(len(engines))]
        marker_ready, marker_sent = Signal(), Signal()
        m.d.comb += [marker_ready.eq(marker_due & engines[top].idle),
                     queue.marker.eq(OutKind.STEP), queue.marker_valid.eq(marker_ready),
                     marker_sent.eq(marker_ready & queue.room),
                     core.step_done.eq(marker_sent)]
        for k, engine in enumerate(engines):
            # layer k is a step ahead of the top layer while any layer from k up is ahead
            # of the next: its outputs would precede the top layer's of the step before
            m.d.comb += [engine.mode.eq(Mode.RUN), engine.start.eq(starts[k]),
                         engine.hold.eq(Cat(*ahead[k:]).any() if k < top else 0)]
            if k < top:
                m.d.sync += ahead[k].eq(starts[k] | (ahead[k] & ~starts[k + 1]))
        m.d.sync += marker_due.eq(starts[top] | (marker_due & ~marker_sent))
        with m.If(marker_sent):
            m.d.sync += parity.eq(~parity)
        m.d.comb += banks.starting.eq(starts[0])

        def states():
            with m.State("IDLE"):
                quiet = all_idle & ~marker_due
                m.d.comb += [idle.eq(quiet), accepting.eq(1),
                             core.config.ready.eq(quiet & ~pending_step & ~pending_sample)]
                # the marker of a step goes into the queue before the next step's top layer
                # starts (in the same cycle at the earliest)
                top_free = ~marker_due | queue.room
                for k, engine in enumerate(engines):
                    source = pending_step if k == 0 else ahead[k - 1]
                    m.d.comb += starts[k].eq(source & engine.idle
                                             & (top_free if k == top else ~ahead[k]))
                with m.If(pending_sample & quiet):
                    m.next = "SCORES"
        return states


def built_memory_bits(core: Core) -> dict[str, int]:
    """Bits of every memory the elaborated ``core`` really contains, by the kinds of
    :meth:`CoreShape.memory_bits` (elaborates the core and counts the memories it holds)."""
    from amaranth.hdl import Fragment, Shape
    bits = dict.fromkeys(core.shape.memory_bits(), 0)
    for kind, mem in tagged_memories(Fragment.get(core, None)):
        bits[kind] += mem.depth * Shape.cast(mem.shape).width
    bits["total"] = sum(v for k, v in bits.items() if k != "total")
    return bits
