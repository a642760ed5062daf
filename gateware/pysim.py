"""Run a :class:`~delayhw.gateware.core.Core` in amaranth.sim: feed packed config and input
words, collect packed output words under optional random back-pressure, count cycles.

For unit tests of the gateware (small networks; the Python simulator runs ~10k cycles/s).
Long runs belong in Verilator through :mod:`delayhw.sim`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from amaranth import ClockDomain, Module
from amaranth.sim import Simulator

from delayhw.sim.clock import CLOCK_PERIOD_S

from .core import Core
from .wire import InKind


@dataclass
class PySimRun:
    outputs: list[int]
    cycles: int
    #: cycles of each step, from the cycle it starts (its STEP taken) to the cycle it has
    #: finished (its STEP marker queued; ``ring``: the next step may have started before)
    step_cycles: list[int] = field(default_factory=list)
    #: cycles in which a step started / finished (see ``step_cycles``)
    step_starts: list[int] = field(default_factory=list)
    step_dones: list[int] = field(default_factory=list)
    #: input words (and of them, STEPs) accepted while a step was in progress (from the
    #: cycle it started to the cycle it finished)
    inputs_during_steps: int = 0
    #: cycle in which the first input word of each sample was accepted
    sample_starts: list[int] = field(default_factory=list)
    steps_during_steps: int = 0
    dropped_inputs: int = 0
    config_errors: int = 0
    #: cycles in which the core offered an output that was not taken
    backpressure_cycles: int = 0
    #: number of output words collected before the reset pulse (with ``reset_after``)
    outputs_before_reset: int | None = None


def simulate(core: Core, inputs: list[int], config: list[int] = (), *, ready_prob: float = 1.0,
             seed: int = 0, reset_after: int | None = None, max_cycles: int = 2_000_000,
             vcd: str | None = None, wait_idle: bool = False) -> PySimRun:
    """Write ``config`` words, then ``inputs`` words, and collect outputs until the core is
    idle with nothing left to send. ``ready_prob`` < 1 drops the output ``ready`` at random.
    ``reset_after=n`` pulses the reset once, right after the n-th input word was accepted
    (config is written before; the remaining input words follow the reset). ``wait_idle``
    holds each word after a STEP or SAMPLE until the core is idle (``status.busy`` low):
    no input overlaps a step, as a host that waits for each step would send them."""
    rng = np.random.default_rng(seed)
    run = PySimRun(outputs=[], cycles=0)
    state = {"fed": False, "resetting": False}

    async def feeder(ctx):
        for word in config:
            ctx.set(core.config.payload.as_value(), word)
            ctx.set(core.config.valid, 1)
            await ctx.tick().until(core.config.ready)
        ctx.set(core.config.valid, 0)
        for n, word in enumerate(inputs):
            ctx.set(core.inputs.payload.as_value(), word)
            ctx.set(core.inputs.valid, 1)
            await ctx.tick().until(core.inputs.ready)
            if wait_idle and (word & 3) in (InKind.STEP, InKind.SAMPLE):
                ctx.set(core.inputs.valid, 0)
                await ctx.tick()
                await ctx.tick().until(~core.status.busy)
            if reset_after is not None and n + 1 == reset_after:
                ctx.set(core.inputs.valid, 0)
                state["resetting"] = True        # the monitor holds ready low meanwhile
                await ctx.tick()
                ctx.set(domain.rst, 1)
                await ctx.tick()
                run.outputs_before_reset = len(run.outputs)
                ctx.set(domain.rst, 0)
                state["resetting"] = False
        ctx.set(core.inputs.valid, 0)
        state["fed"] = True

    async def monitor(ctx):
        idle_run = 0
        in_progress = []                 # start cycles of the steps not finished yet
        first_of_sample = True
        while run.cycles < max_cycles:
            ctx.set(core.outputs.ready, int(rng.random() < ready_prob and not state["resetting"]))
            (_, _, valid, ready, payload, busy, started, done, in_valid, in_ready,
             kind) = await ctx.tick().sample(
                core.outputs.valid, core.outputs.ready, core.outputs.payload, core.status.busy,
                core.step_start, core.step_done, core.inputs.valid, core.inputs.ready,
                core.inputs.payload.kind)
            run.cycles += 1
            if valid and ready:
                run.outputs.append(_as_int(payload))
            run.backpressure_cycles += valid and not ready
            if in_valid and in_ready:
                if first_of_sample:
                    run.sample_starts.append(run.cycles)
                first_of_sample = kind == InKind.SAMPLE
            if in_valid and in_ready and (in_progress or started):
                run.inputs_during_steps += 1
                run.steps_during_steps += kind == InKind.STEP
            if started:
                in_progress.append(run.cycles)
                run.step_starts.append(run.cycles)
            if done and in_progress:
                run.step_cycles.append(run.cycles - in_progress.pop(0))
                run.step_dones.append(run.cycles)
            idle_run = idle_run + 1 if (state["fed"] and not busy and not valid) else 0
            if idle_run > 4:
                break
        run.dropped_inputs = _as_int(ctx.get(core.status.dropped_inputs))
        run.config_errors = _as_int(ctx.get(core.status.config_errors))

    top = Module()
    top.domains.sync = domain = ClockDomain("sync")
    top.submodules.core = core
    sim = Simulator(top)
    sim.add_clock(CLOCK_PERIOD_S)
    sim.add_testbench(feeder, background=True)
    sim.add_testbench(monitor)
    if vcd:
        with sim.write_vcd(vcd):
            sim.run()
    else:
        sim.run()
    if run.cycles >= max_cycles:
        raise RuntimeError(f"core did not finish within {max_cycles} cycles")
    return run


def _as_int(value) -> int:
    """An int from what amaranth.sim returns for a signal or a layout view."""
    return int(value.as_value().value) if hasattr(value, "as_value") else int(value)
