"""Geometry of the core's memories, in plain Python (no Amaranth): the iCE40UP5K SPRAM block
and the nibble-aligned synapse word of :class:`~delayhw.gateware.memories.SynapseMemory`.

The cost models (:mod:`delayhw.gateware.shape`, the scheme cost models) and the board fit
check read these without elaborating anything, so ``delayhw --help`` imports no Amaranth;
:mod:`delayhw.gateware.memories` builds the memories from the same numbers.
"""

from __future__ import annotations

import math

#: the iCE40UP5K's single-port RAM block: 16384 words of 16 bits, 4-bit write mask
SPRAM_DEPTH, SPRAM_WIDTH = 16384, 16
#: SPRAM blocks of an iCE40UP5K
UP5K_SPRAMS = 4
NIBBLE = 4


def nibbles(bits: int) -> int:
    """Bits of a field of ``bits`` rounded up to whole nibbles (the SPRAM write mask's unit)."""
    return NIBBLE * math.ceil(bits / NIBBLE)


def spram_blocks(width: int, depth: int) -> int:
    """``SB_SPRAM256KA`` blocks that hold a ``depth`` x ``width`` memory."""
    return math.ceil(width / SPRAM_WIDTH) * math.ceil(depth / SPRAM_DEPTH)


def synapse_memory_bits(w_bits: int, d_bits: int, lanes: int, rows: int) -> int:
    """Bits of a synapse memory of ``rows`` rows (what :class:`SynapseMemory` builds):
    ``lanes`` ``{w, d}`` pairs per row, each field rounded up to whole nibbles."""
    return rows * lanes * (nibbles(w_bits) + nibbles(d_bits))
