"""The delay schemes, one module each, registered here (DESIGN.md section 5).

Every scheme is a :class:`~delayhw.gateware.layer.LayerEngine` subclass. :data:`REGISTRY` is
the one list of schemes: ``CoreShape`` (and through it the CLI, cosim, regress and the
benches) reads the names from it; adding a scheme is one module here plus one entry below.
The engines are imported on first use, so reading the names costs no Amaranth import (the
CLI's ``--help`` stays fast).
"""

from __future__ import annotations

from importlib import import_module

#: scheme name -> ``module:class`` of its engine in this package
REGISTRY = {"fifo": "fifo:FifoLayer", "ring": "ring:RingLayer"}
#: the scheme names, in the order the CLI offers them (the first is the default)
SCHEMES = tuple(REGISTRY)


def engine(scheme: str):
    """The :class:`~delayhw.gateware.layer.LayerEngine` subclass of ``scheme``."""
    module, cls = REGISTRY[scheme].split(":")
    return getattr(import_module(f".{module}", __name__), cls)


def __getattr__(name: str):
    # SCHEME_ENGINES (name -> engine class), FifoLayer and RingLayer, imported on first use
    if name == "SCHEME_ENGINES":
        return {scheme: engine(scheme) for scheme in REGISTRY}
    for scheme, target in REGISTRY.items():
        if target.endswith(f":{name}"):
            return engine(scheme)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["REGISTRY", "SCHEMES", "SCHEME_ENGINES", "engine"]
