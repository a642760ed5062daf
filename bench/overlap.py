"""Double-buffered input (issue 10, part 4): cycles per sample with the input streamed at
one word per cycle, against a host that waits for the core to be idle after every STEP
(no input overlaps a step: the protocol before double buffering), measured in the same run
on the same core in amaranth.sim, for the demo model and 64 -> 64 recurrent -> 10, both
schemes, 1 lane, 10 steps of random input at 20%. Also checks the measured streamed
cycles against :meth:`CoreShape.sample_cycles`, and records the mean cycles per step
(``cycles_per_step``: from a step's start to its end, which the overlap of the layers'
pipelines shortens; run this script on an older tree for its figures) and the mean period
of a sample's steps (``step_period``: start to start; shorter than ``cycles_per_step``
where steps pipeline). Writes
bench/results/overlap.json.

    python bench/overlap.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import write_result  # noqa: E402
from gateware import model_of  # noqa: E402

from delayhw import golden, netgen  # noqa: E402
from delayhw.gateware import protocol, pysim  # noqa: E402
from delayhw.gateware.core import Core  # noqa: E402
from delayhw.gateware.shape import SCHEMES, CoreShape  # noqa: E402

STEPS, ACTIVITY = 10, 0.2


def measure(name: str, model, scheme: str, lanes: int = 1) -> dict:
    spikes = netgen.random_spikes(np.random.default_rng(1), 2, STEPS, model.n_inputs, ACTIVITY)
    shape = CoreShape.from_model(model, lanes, scheme)
    expected = golden.run(model, spikes)
    row = {"network": name, "scheme": scheme, "lanes": lanes, "steps": STEPS,
           "input_activity": ACTIVITY}
    for label, wait in (("streamed", False), ("waiting_host", True)):
        run = pysim.simulate(Core(shape, model), protocol.batch_words(spikes), wait_idle=wait)
        assert protocol.first_difference(
            expected, protocol.decode_outputs(run.outputs, shape, 2, STEPS)) is None
        row[f"{label}_cycles_per_sample"] = run.sample_starts[1] - run.sample_starts[0]
        row[f"{label}_inputs_during_steps"] = run.inputs_during_steps
        if not wait:
            row["cycles_per_step"] = round(float(np.mean(run.step_cycles)), 1)
            # start to start within a sample (``ring``: steps pipeline, so a step's start to
            # its end is longer than the period)
            starts = np.asarray(run.step_starts).reshape(2, STEPS)
            row["step_period"] = round(float(np.diff(starts, axis=1).mean()), 1)
    row["formula_cycles_per_sample"] = shape.sample_cycles(spikes[0],
                                                           [s[0] for s in expected.spikes])
    assert row["formula_cycles_per_sample"] == row["streamed_cycles_per_sample"]
    row["waiting_over_streamed"] = round(row["waiting_host_cycles_per_sample"]
                                         / row["streamed_cycles_per_sample"], 4)
    print(f"{name:24s} {scheme}: streamed {row['streamed_cycles_per_sample']} cycles/sample, "
          f"waiting host {row['waiting_host_cycles_per_sample']} "
          f"({row['waiting_over_streamed']}x); {row['cycles_per_step']} cycles/step, period "
          f"{row['step_period']}", flush=True)
    return row


def main() -> None:
    rows = [measure(name, model, scheme)
            for name, model in (("demo 8 -> 16 -> 4", netgen.example_model()),
                                ("64 -> 64r -> 10, d_max 16", model_of(64, 64, 10, 16, True)))
            for scheme in SCHEMES]
    write_result("overlap", {"rows": rows})


if __name__ == "__main__":
    main()
