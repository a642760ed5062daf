"""Helpers shared by the gateware tests (imported as ``helpers``, like ``strategies``): one
way to run a core in amaranth.sim and one comparison with the golden model."""

from __future__ import annotations

import re
from dataclasses import replace

from delayhw import golden, netgen
from delayhw.gateware import protocol, pysim
from delayhw.gateware.core import Core
from delayhw.gateware.shape import CoreShape

#: the random networks of the gateware tests: small, every feature drawn
VARIED = netgen.NetParams(max_inputs=6, max_size=6, max_layers=3, d_max=(0, 5))


def run_and_decode(model, spikes, lanes=1, *, scheme="fifo", words=None, from_config=False,
                   queue=8, **kwargs):
    """Run ``spikes`` (or the input ``words``) through a core of ``model`` in amaranth.sim:
    the run and its decoded result. ``from_config``: an empty core loaded through the
    configuration stream; ``queue``: the output queue's depth; ``kwargs`` go to
    :func:`~delayhw.gateware.pysim.simulate`."""
    shape = replace(CoreShape.from_model(model, lanes, scheme), out_fifo_depth=queue)
    core = Core(shape) if from_config else Core(shape, model)
    config = protocol.config_stream(model) if from_config else []
    words = protocol.batch_words(spikes) if words is None else words
    run = pysim.simulate(core, words, config, **kwargs)
    return run, decode(shape, run, spikes)


def decode(shape, run, spikes):
    """The result of ``run`` (a :class:`~delayhw.gateware.pysim.PySimRun` of ``spikes``)."""
    return protocol.decode_outputs(run.outputs, shape, *spikes.shape[:2])


def assert_matches_golden(model, spikes, result):
    """``result`` equals the golden model's on ``spikes`` bit for bit."""
    difference = protocol.first_difference(golden.run(model, spikes), result)
    assert difference is None, str(difference)


def rtlil_ports(text: str, module: str) -> list[dict]:
    """The ports of ``module`` in an RTLIL text, as the manifest lists them."""
    body = re.search(rf"^module \\{module}$(.*?)^end$", text, re.M | re.S).group(1)
    return [{"name": name, "direction": direction, "width": int(width)} for width, direction, name
            in re.findall(r"^  wire width (\d+) (input|output) \d+ +\\(\S+)$", body, re.M)]
