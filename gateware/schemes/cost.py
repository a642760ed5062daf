"""The cost model of a delay scheme: the formulas a core of one shape spends with it.

One :class:`SchemeCost` subclass per scheme, in plain Python (no Amaranth), registered beside
the scheme's engine in :data:`delayhw.gateware.schemes.REGISTRY`. :class:`CoreShape`
(:attr:`~delayhw.gateware.shape.CoreShape.cost`) asks it for cycles and memory bits, and through
``CoreShape`` so do the manifest, ``delayhw build``'s report, the board fit check and the
benches; nothing outside the scheme's own modules branches on its name.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from delayhw.spec import LayerShape


class SchemeCost(ABC):
    """What a core of ``shape`` (a :class:`~delayhw.gateware.shape.CoreShape` of this scheme)
    costs. A subclass implements every abstract method and sets every attribute below
    (checked when the class is defined)."""

    #: what :meth:`cycles_per_step` without spike counts stands for, for the manifest
    #: (appended to "output stream always ready; inputs sent as fast as accepted"); "" when
    #: the spike counts do not change the cycles
    cycles_note: str
    #: board fit (:func:`delayhw.boards.fit.logic_estimate`): LUT4 this scheme adds per
    #: datapath bit to the common rule, for the first lane and for each further lane (fitted
    #: on bench/results/boards.json; ``(0.0, 0.0)`` for the scheme the rule was fitted on)
    lut_per_bit: tuple[float, float]

    ATTRIBUTES = ("cycles_note", "lut_per_bit")

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        missing = [a for a in SchemeCost.ATTRIBUTES if not hasattr(cls, a)]
        if missing:
            raise TypeError(f"{cls.__name__}: a scheme cost model must set {missing}")

    def __init__(self, shape):
        self.shape = shape

    @abstractmethod
    def cycles_per_step(self, source_spikes=None, recurrent_spikes=None) -> int:
        """Clock cycles of one step (:meth:`CoreShape.cycles_per_step` states the contract);
        ``source_spikes[k]``/``recurrent_spikes[k]``: the spikes layer ``k`` receives, or
        None for every source spiking."""

    def step_cycles(self, input_events: int, spikes, previous) -> int:
        """Cycles of one step from the spikes themselves: ``input_events`` distinct input
        channels, ``spikes[k]``/``previous[k]`` the unit vectors of lif layer ``k`` in this
        step and the previous one (``None`` for the readout, and for ``previous`` in a
        sample's first step). By default from their counts (:meth:`cycles_per_step`); a
        scheme whose cycles depend on *which* units spike overrides it
        (:meth:`CoreShape.cycles_of_sample` asks this)."""
        layers = self.shape.layers
        source = [input_events] + [int(sum(spikes[k])) for k in range(len(layers) - 1)]
        recurrent = [int(sum(previous[k])) if l.recurrent and previous[k] is not None else 0
                     for k, l in enumerate(layers)]
        return self.cycles_per_step(source, recurrent)

    #: a step may start before the one before it has finished (:meth:`schedule`)
    pipelined_steps = False
    #: the CLEAR walk after a sample walks the input bitmaps (``n_inputs`` cycles) even when
    #: no event came after its last STEP
    walks_inputs_after_sample = True
    #: cycles from a sample's last STEP marker to the start of its score walk, beyond one
    sample_end_delay = 0

    def schedule(self, steps, words=None) -> tuple[list[int], list[int]]:
        """The cycles in which each step of a sample starts (layer 0 takes its STEP) and
        finishes (its STEP marker is queued), the first step starting at 0, output always
        ready. ``steps``: :meth:`step_cycles`'s arguments ``(input_events, spikes,
        previous)`` of every step; ``words[t]``: the input words (SPIKEs) of step ``t``,
        streamed one per cycle from the cycle after step ``t - 1`` starts, its STEP after
        them (step ``t`` starts 2 cycles after its last SPIKE at the earliest); None: every
        STEP is in when the core can take it. By default a step starts when the one before
        has finished (:meth:`step_cycles` after its start); a scheme whose steps pipeline
        overrides it."""
        starts, dones = [], []
        for t, step in enumerate(steps):
            start = 0 if t == 0 else dones[-1]
            if t and words is not None:
                start = max(start, starts[-1] + words[t] + 2)
            starts.append(start)
            dones.append(start + self.step_cycles(*step))
        return starts, dones

    @abstractmethod
    def cycles_formula(self) -> str:
        """:meth:`cycles_per_step` as a formula for people (the manifest's)."""

    @abstractmethod
    def clear_walk(self, layer: LayerShape) -> int:
        """Cycles the state-clearing walk of ``layer``'s memories takes."""

    @abstractmethod
    def memory_bits(self) -> dict[str, int]:
        """Bits of every memory the scheme's core holds, by kind (the kinds its engine
        registers in ``LayerEngine.memories``, plus the core's input memories), no total."""

    @abstractmethod
    def delay_storage(self) -> dict[str, int]:
        """docs/design.md section 5's "about" figure of the scheme's delay storage, named by its
        formula (``bench/gateware.py`` sets it beside :meth:`memory_bits`)."""
