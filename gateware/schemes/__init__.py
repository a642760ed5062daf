"""The delay schemes, registered here (docs/design.md section 5).

A scheme is two parts, each a module of this package:

* its **engine**, a :class:`~delayhw.gateware.layer.LayerEngine` subclass (Amaranth): the
  layer's datapath (``fifo.py``, ``ring.py``);
* its **cost model**, a :class:`~delayhw.gateware.schemes.cost.SchemeCost` subclass (plain
  Python): cycles per step, memory bits by kind, the manifest's and the fit check's figures
  (``fifo_cost.py``, ``ring_cost.py``).

:data:`REGISTRY` is the one list of schemes: ``CoreShape`` (and through it the CLI, cosim,
regress, the boards and the benches) reads the names and the cost models from it; adding a
scheme is its modules here plus one entry below. Both parts are imported on first use, so
reading the names costs no Amaranth import (the CLI's ``--help`` stays fast), and the cost
models never import Amaranth.
"""

from __future__ import annotations

from importlib import import_module
from typing import NamedTuple


class Scheme(NamedTuple):
    """Where a scheme's parts are: ``"module:Class"`` in this package (imported on first
    use), or the class itself."""
    engine: "str | type"
    cost: "str | type"


#: scheme name -> its parts
REGISTRY = {"fifo": Scheme(engine="fifo:FifoLayer", cost="fifo_cost:FifoCost"),
            "ring": Scheme(engine="ring:RingLayer", cost="ring_cost:RingCost")}
#: the scheme names, in the order the CLI offers them (the first is the default)
SCHEMES = tuple(REGISTRY)


def _load(target):
    if not isinstance(target, str):
        return target
    module, cls = target.split(":")
    return getattr(import_module(f".{module}", __name__), cls)


def engine(scheme: str):
    """The :class:`~delayhw.gateware.layer.LayerEngine` subclass of ``scheme``."""
    return _load(REGISTRY[scheme].engine)


def cost_model(scheme: str):
    """The :class:`~delayhw.gateware.schemes.cost.SchemeCost` subclass of ``scheme``."""
    return _load(REGISTRY[scheme].cost)


def __getattr__(name: str):
    # SCHEME_ENGINES (name -> engine class), imported on first use
    if name == "SCHEME_ENGINES":
        return {scheme: engine(scheme) for scheme in REGISTRY}
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["REGISTRY", "SCHEMES", "SCHEME_ENGINES", "Scheme", "cost_model", "engine"]
