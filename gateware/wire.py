"""The core's wire formats, defined once: the input, configuration, output and status words.

Every packed word is a :class:`Word`, a table of fields from bit 0 up. Everything else is
derived from these tables:

* the Amaranth payload layouts of the core's streams (:meth:`Word.layout`, used by
  :mod:`delayhw.gateware.core`);
* the Python encoders and decoders (:meth:`Word.pack` / :meth:`Word.unpack`, used by
  :mod:`delayhw.gateware.protocol`, amaranth.sim, cocotb and the host);
* the widths and codes of the simulation top ``sim/cosim_top.v``, passed to it as Verilog
  parameters (:func:`sim_parameters`) instead of written there by hand;
* the manifest's payload tables (:func:`delayhw.gateware.verilog.manifest`).

``tests/test_gateware_wire.py`` checks that the three agree. Pure Python (Amaranth is imported
only by :meth:`Word.layout`), so the host can use it without the gateware.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Any

INDEX_BITS = 16              #: unit / channel index width in every event and config address
LAYER_BITS = 8               #: layer index width
CONFIG_DATA_BITS = 32        #: signed data of a configuration write
COUNTER_BITS = 16            #: width of each status counter (saturating)


class InKind(IntEnum):
    """Kinds of input events."""
    SPIKE = 0    #: spike on input channel ``index`` in the current step
    STEP = 1     #: end of the current step: run every layer once
    SAMPLE = 2   #: end of the sample: emit scores, then clear all state


class OutKind(IntEnum):
    """Kinds of output events."""
    SPIKE = 0    #: unit ``unit`` of lif layer ``layer`` spiked in this step
    STEP = 1     #: every layer has finished the step
    SCORE = 2    #: readout unit ``unit`` scored ``value`` over the sample
    SAMPLE = 3   #: all scores of the sample have been sent; state is being cleared


class Field(IntEnum):
    """Configuration fields; ``row``/``col`` give the matrix entry (unit j, input i)."""
    W = 0
    D = 1
    W_REC = 2
    D_REC = 3
    BIAS = 4     #: row = unit, col = 0
    PARAM = 5    #: row = :class:`Param`, col = 0


class Param(IntEnum):
    BETA = 0
    THRESHOLD = 1
    RESET = 2    #: :attr:`delayhw.spec.Reset.zero_bit`: 0 = subtract, 1 = zero


def code_bits(codes: type[IntEnum]) -> int:
    """Bits that hold every code of ``codes`` (at least 1)."""
    return max(1, max(int(c) for c in codes).bit_length())


#: kinds share one width so that an input and an output word both start with their kind
KIND_BITS = max(code_bits(InKind), code_bits(OutKind))
FIELD_BITS = code_bits(Field)


@dataclass(frozen=True)
class Bits:
    """One field of a :class:`Word`: ``width`` bits, two's complement if ``signed``."""
    width: int
    signed: bool = False


@dataclass(frozen=True)
class Word:
    """A packed word: named fields (:class:`Bits` or a nested :class:`Word`) laid out from
    bit 0 up in the order given."""

    name: str
    fields: tuple[tuple[str, "Bits | Word"], ...]

    @property
    def width(self) -> int:
        return sum(f.width for _, f in self.fields)

    def offset(self, name: str) -> int:
        """Bit offset of field ``name``."""
        at = 0
        for n, f in self.fields:
            if n == name:
                return at
            at += f.width
        raise KeyError(f"{self.name}: no field {name!r}")

    def flat(self, prefix: str = "", base: int = 0) -> list[dict[str, Any]]:
        """Every leaf field as ``{"name", "offset", "width", "signed"}`` (nested names
        dotted), lowest bit first."""
        out, at = [], base
        for n, f in self.fields:
            if isinstance(f, Word):
                out += f.flat(f"{prefix}{n}.", at)
            else:
                out.append({"name": prefix + n, "offset": at, "width": f.width,
                            "signed": f.signed})
            at += f.width
        return out

    def pack(self, **values: "int | dict") -> int:
        """The word with each named field set (missing fields are 0). A nested word's value
        is either its packed integer or a dict of its fields. Raises ``ValueError`` for a
        value that does not fit its field."""
        unknown = set(values) - {n for n, _ in self.fields}
        if unknown:
            raise ValueError(f"{self.name}: no field {sorted(unknown)[0]!r}")
        word, at = 0, 0
        for n, f in self.fields:
            v = values.get(n, 0)
            if isinstance(f, Word) and isinstance(v, dict):
                v = f.pack(**v)
            signed = isinstance(f, Bits) and f.signed
            lo, hi = (-(1 << (f.width - 1)), (1 << (f.width - 1)) - 1) if signed \
                else (0, (1 << f.width) - 1)
            if not lo <= int(v) <= hi:
                raise ValueError(f"{self.name}.{n}: {v} does not fit {f.width} "
                                 f"{'signed ' if signed else ''}bits")
            word |= (int(v) & ((1 << f.width) - 1)) << at
            at += f.width
        return word

    def unpack(self, word: int) -> dict[str, "int | dict"]:
        """The fields of ``word`` (signed fields sign-extended, nested words as dicts)."""
        out, at = {}, 0
        for n, f in self.fields:
            v = (word >> at) & ((1 << f.width) - 1)
            if isinstance(f, Word):
                v = f.unpack(v)
            elif f.signed and v >> (f.width - 1):
                v -= 1 << f.width
            out[n] = v
            at += f.width
        return out

    def layout(self):
        """The Amaranth ``StructLayout`` of this word (same names, offsets and signedness)."""
        from amaranth import signed, unsigned
        from amaranth.lib import data
        return data.StructLayout({
            n: f.layout() if isinstance(f, Word)
            else (signed if f.signed else unsigned)(f.width) for n, f in self.fields})


INPUT = Word("input", (("kind", Bits(KIND_BITS)), ("index", Bits(INDEX_BITS))))
CONFIG_ADDR = Word("config_addr", (("col", Bits(INDEX_BITS)), ("row", Bits(INDEX_BITS)),
                                   ("field", Bits(FIELD_BITS)), ("layer", Bits(LAYER_BITS))))
CONFIG = Word("config", (("addr", CONFIG_ADDR), ("data", Bits(CONFIG_DATA_BITS, signed=True))))
STATUS = Word("status", (("busy", Bits(1)), ("dropped_inputs", Bits(COUNTER_BITS)),
                         ("config_errors", Bits(COUNTER_BITS))))


def output(score_bits: int) -> Word:
    """An output event; ``value`` is :attr:`CoreShape.score_bits` wide (a score, or the
    overlong flag of a ``SAMPLE`` event)."""
    return Word("output", (("kind", Bits(KIND_BITS)), ("layer", Bits(LAYER_BITS)),
                           ("unit", Bits(INDEX_BITS)), ("value", Bits(score_bits, signed=True))))


def config_address(layer: int, field: Field, row: int, col: int) -> int:
    """The configuration address of one entry (a :data:`CONFIG_ADDR` word)."""
    return CONFIG_ADDR.pack(layer=layer, field=int(field), row=row, col=col)


def sim_parameters(score_bits: int) -> dict[str, int]:
    """The Verilog parameters of ``sim/cosim_top.v`` for a core whose scores are
    ``score_bits`` wide: word widths, and the kind field (at bit 0 of input and output words)
    with the codes the top watches for."""
    out = output(score_bits)
    assert INPUT.offset("kind") == 0 and out.offset("kind") == 0
    return {"IN_W": INPUT.width, "CFG_W": CONFIG.width, "OUT_W": out.width,
            "STATUS_W": STATUS.width, "KIND_W": KIND_BITS, "IN_SAMPLE": int(InKind.SAMPLE),
            "OUT_SAMPLE": int(OutKind.SAMPLE)}
