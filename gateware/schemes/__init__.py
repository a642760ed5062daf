"""The delay schemes, one module each, registered here (DESIGN.md section 5).

Every scheme is a :class:`~delayhw.gateware.layer.LayerEngine` subclass. The CLI, cosim,
regress and the benches read the scheme names from :data:`SCHEME_ENGINES` (through
``CoreShape``'s ``SCHEMES``); adding a scheme is one module here plus one entry below.
"""

from .fifo import FifoLayer
from .ring import RingLayer

#: The delay schemes, by name (``CoreShape.scheme``).
SCHEME_ENGINES = {"fifo": FifoLayer, "ring": RingLayer}

__all__ = ["SCHEME_ENGINES", "FifoLayer", "RingLayer"]
