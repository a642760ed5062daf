"""The core's clock on a board: the oscillator itself, or a PLL from it (iCE40 ``SB_PLL40_PAD``,
ECP5 ``EHXPLLL``), and the UART divisor at the clock actually reached.

The divider search is the one of Project IceStorm's ``icepll`` (simple feedback) and Project
Trellis's ``ecppll`` (feedback from CLKOP), done here in exact fractions so the same request
always gives the same dividers; ``tests/test_boards.py`` checks it against the data-sheet
ranges and against the yowasp builds of both tools. Only the board build uses a PLL: the
simulated board (:mod:`delayhw.sim.board`) is the bare :class:`~delayhw.gateware.board_top.
BoardTop` on a simulator clock, so nothing here is ever simulated.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from amaranth import ClockDomain, ClockSignal, Elaboratable, Instance, Module, ResetSignal, Signal
from amaranth.lib import io
from amaranth.lib.cdc import FFSynchronizer

from delayhw.errors import DelayhwError

#: iCE40 PLL (iCE40 sysCLOCK PLL design guide): PFD 10..133 MHz, VCO 533..1066 MHz, output
#: 16..275 MHz; DIVR 0..15, DIVF 0..127, DIVQ 1..6
ICE40_PFD = (10, 133)
ICE40_VCO = (533, 1066)
ICE40_OUT = (16, 275)
#: ECP5 EHXPLLL (ECP5 sysCLOCK PLL usage guide): PFD 3.125..400 MHz, VCO 400..800 MHz, output
#: 3.125..400 MHz; CLKI_DIV 1..128, CLKFB_DIV 1..80, CLKOP_DIV 1..128
ECP5_PFD = (Fraction(3125, 1000), 400)
ECP5_VCO = (400, 800)
ECP5_OUT = (Fraction(3125, 1000), 400)
#: the UART divisor's largest allowed error (a UART samples mid-bit: 2% over a 10-bit frame
#: keeps the last bit's sample inside the bit with room for the other end's error)
MAX_BAUD_ERROR = 0.02
#: cycles of the core clock the design is held in reset after the PLL locks (iCE40 block RAM
#: reads as zero for about 3 us after configuration: 15 us covers it at any clock here)
RESET_US = 15


@dataclass(frozen=True)
class Ice40Pll:
    """``SB_PLL40_PAD`` dividers, simple feedback: ``f_out = f_in * (divf + 1) /
    ((divr + 1) * 2**divq)``."""

    f_in_mhz: Fraction
    divr: int
    divf: int
    divq: int

    @property
    def f_pfd_mhz(self) -> Fraction:
        return self.f_in_mhz / (self.divr + 1)

    @property
    def f_vco_mhz(self) -> Fraction:
        return self.f_pfd_mhz * (self.divf + 1)

    @property
    def f_out_mhz(self) -> Fraction:
        return self.f_vco_mhz / 2 ** self.divq

    @property
    def filter_range(self) -> int:
        """The loop filter setting for the PFD frequency (as icepll chooses it)."""
        pfd = self.f_pfd_mhz
        return next((n for n, top in enumerate((17, 26, 44, 66, 101), 1) if pfd < top), 6)

    def instance(self, pad, clk_out: Signal, lock: Signal) -> Instance:
        return Instance("SB_PLL40_PAD", p_FEEDBACK_PATH="SIMPLE", p_DIVR=self.divr,
                        p_DIVF=self.divf, p_DIVQ=self.divq, p_FILTER_RANGE=self.filter_range,
                        i_PACKAGEPIN=pad, i_RESETB=1, i_BYPASS=0,
                        o_PLLOUTGLOBAL=clk_out, o_LOCK=lock)


@dataclass(frozen=True)
class Ecp5Pll:
    """``EHXPLLL`` dividers, feedback from CLKOP: ``f_out = f_in * clkfb_div / clki_div``,
    VCO ``f_out * clkop_div``."""

    f_in_mhz: Fraction
    clki_div: int
    clkfb_div: int
    clkop_div: int

    @property
    def f_pfd_mhz(self) -> Fraction:
        return self.f_in_mhz / self.clki_div

    @property
    def f_out_mhz(self) -> Fraction:
        return self.f_pfd_mhz * self.clkfb_div

    @property
    def f_vco_mhz(self) -> Fraction:
        return self.f_out_mhz * self.clkop_div

    @property
    def cphase(self) -> int:
        """CLKOP's coarse phase: half the output divider, as ecppll sets it."""
        return (self.clkop_div - 1) // 2

    def instance(self, clk_in, clk_out: Signal, lock: Signal) -> Instance:
        return Instance(
            "EHXPLLL",
            a_FREQUENCY_PIN_CLKI=_mhz(self.f_in_mhz), a_FREQUENCY_PIN_CLKOP=_mhz(self.f_out_mhz),
            a_ICP_CURRENT="12", a_LPF_RESISTOR="8", a_MFG_ENABLE_FILTEROPAMP="1",
            a_MFG_GMCREF_SEL="2",
            p_PLLRST_ENA="DISABLED", p_INTFB_WAKE="DISABLED", p_STDBY_ENABLE="DISABLED",
            p_DPHASE_SOURCE="DISABLED", p_OUTDIVIDER_MUXA="DIVA", p_CLKOP_ENABLE="ENABLED",
            p_CLKI_DIV=self.clki_div, p_CLKOP_DIV=self.clkop_div, p_CLKOP_CPHASE=self.cphase,
            p_CLKOP_FPHASE=0, p_FEEDBK_PATH="CLKOP", p_CLKFB_DIV=self.clkfb_div,
            i_RST=0, i_STDBY=0, i_CLKI=clk_in, i_CLKFB=clk_out, i_PHASESEL0=0, i_PHASESEL1=0,
            i_PHASEDIR=1, i_PHASESTEP=1, i_PHASELOADREG=1, i_PLLWAKESYNC=0, i_ENCLKOP=0,
            o_CLKOP=clk_out, o_LOCK=lock)


def _mhz(value: Fraction) -> str:
    return f"{float(value):.6g}"


def _in_range(value, bounds) -> bool:
    return bounds[0] <= value <= bounds[1]


def ice40_pll(f_in_mhz, f_out_mhz) -> Ice40Pll:
    """The dividers whose output, inside the PLL's output range, is nearest ``f_out_mhz`` (the
    first found on a tie, in icepll's order: DIVR, DIVF, DIVQ ascending). icepll also offers
    outputs outside the range (e.g. 15.94 MHz for 16 from 12); this search does not."""
    f_in, want = Fraction(f_in_mhz), Fraction(f_out_mhz)
    best = None
    for divr in range(16):
        if not _in_range(f_in / (divr + 1), ICE40_PFD):
            continue
        for divf in range(128):
            pll = Ice40Pll(f_in, divr, divf, 1)
            if not _in_range(pll.f_vco_mhz, ICE40_VCO):
                continue
            for divq in range(1, 7):
                pll = Ice40Pll(f_in, divr, divf, divq)
                if not _in_range(pll.f_out_mhz, ICE40_OUT):
                    continue
                if best is None or abs(pll.f_out_mhz - want) < abs(best.f_out_mhz - want):
                    best = pll
    return best


def ecp5_pll(f_in_mhz, f_out_mhz) -> Ecp5Pll:
    """The dividers whose output is nearest ``f_out_mhz``, on a tie the VCO nearest 600 MHz
    (ecppll's rule), then the first found (CLKI_DIV, CLKFB_DIV, CLKOP_DIV ascending); outputs
    outside the PLL's range are never offered. (ecppll compares in floating point, so on an
    exact tie of both, e.g. 133.33 MHz from 25, rounding may make it pick the other.)"""
    f_in, want = Fraction(f_in_mhz), Fraction(f_out_mhz)
    best, best_key = None, None
    for clki in range(1, 129):
        if not _in_range(f_in / clki, ECP5_PFD):
            continue
        for clkfb in range(1, 81):
            out = f_in * clkfb / clki
            # CLKOP_DIV with the VCO in range: out * div in [400, 800]
            for clkop in range(max(1, -(-ECP5_VCO[0] // out)), min(128, ECP5_VCO[1] // out) + 1):
                pll = Ecp5Pll(f_in, clki, clkfb, int(clkop))
                if not (_in_range(pll.f_vco_mhz, ECP5_VCO) and _in_range(out, ECP5_OUT)):
                    continue
                key = (abs(out - want), abs(pll.f_vco_mhz - 600))
                if best_key is None or key < best_key:
                    best, best_key = pll, key
    return best


@dataclass(frozen=True)
class Clocking:
    """The core clock of one build: the oscillator (``pll`` None) or a PLL output."""

    board: str
    family: str
    oscillator_hz: float
    pll: Ice40Pll | Ecp5Pll | None = None

    @property
    def hz(self) -> float:
        """The clock the core runs at (the PLL's real output, not the request)."""
        return float(self.pll.f_out_mhz) * 1e6 if self.pll else self.oscillator_hz

    def divisor(self, baud: int) -> int:
        """Clock cycles per UART bit at ``baud``."""
        return round(self.hz / baud)

    def baud_error(self, baud: int) -> float:
        """Relative error of the real baud rate against ``baud``."""
        return abs(self.hz / self.divisor(baud) - baud) / baud

    def check_baud(self, baud: int) -> None:
        """Raise :class:`DelayhwError` when the UART cannot run at ``baud`` on this clock."""
        mhz = f"{self.hz / 1e6:.6g} MHz"
        if self.divisor(baud) < 4:
            raise DelayhwError(f"--baud {baud}: at most {self.hz / 4:,.0f} at {mhz} on the "
                               f"{self.board} (the UART needs 4 clock cycles per bit)")
        if self.baud_error(baud) > MAX_BAUD_ERROR:
            raise DelayhwError(f"--baud {baud}: {mhz} / {self.divisor(baud)} is "
                               f"{self.baud_error(baud):.1%} off (UARTs need < 2%)")

    def sync_domain(self) -> ClockDomain:
        """The ``sync`` domain :class:`PllDomain` drives: with a reset on iCE40, reset-less on
        ECP5 (the global set/reset resets it)."""
        return ClockDomain("sync", reset_less=self.family == "ecp5")

    def describe(self) -> str:
        osc = f"{self.oscillator_hz / 1e6:g} MHz oscillator"
        if not self.pll:
            return osc
        p = self.pll
        divs = (f"DIVR {p.divr}, DIVF {p.divf}, DIVQ {p.divq}" if isinstance(p, Ice40Pll) else
                f"CLKI_DIV {p.clki_div}, CLKFB_DIV {p.clkfb_div}, CLKOP_DIV {p.clkop_div}")
        return f"PLL from the {osc} ({divs}; VCO {float(p.f_vco_mhz):.6g} MHz)"

    def as_dict(self) -> dict:
        pll = None
        if self.pll:
            pll = {k: getattr(self.pll, k) for k in self.pll.__dataclass_fields__
                   if k != "f_in_mhz"}
            pll |= {"primitive": "SB_PLL40_PAD" if self.family == "ice40" else "EHXPLLL",
                    "vco_mhz": float(self.pll.f_vco_mhz)}
        return {"oscillator_mhz": self.oscillator_hz / 1e6, "clock_mhz": self.hz / 1e6,
                "pll": pll}


def clocking(board: str, family: str, oscillator_hz: float, clock_hz: float) -> Clocking:
    """The clock for a request of ``clock_hz`` on a board with ``oscillator_hz``: the
    oscillator when they are equal, else the nearest PLL output. Raises
    :class:`DelayhwError` for a clock the board's PLL cannot make within 1%."""
    if clock_hz == oscillator_hz:
        return Clocking(board, family, oscillator_hz)
    f_in, want = Fraction(oscillator_hz / 1e6), Fraction(clock_hz / 1e6).limit_denominator(10**6)
    bounds = {"ice40": ICE40_OUT, "ecp5": ECP5_OUT}.get(family)
    if bounds is None:
        raise DelayhwError(f"--clock-mhz: the {board} has no PLL support here; its clock is "
                           f"the {oscillator_hz / 1e6:g} MHz oscillator")
    if not _in_range(want, bounds):
        raise DelayhwError(f"--clock-mhz {clock_hz / 1e6:g}: the {board}'s PLL makes "
                           f"{float(bounds[0]):g} to {float(bounds[1]):g} MHz (or give the "
                           f"{oscillator_hz / 1e6:g} MHz oscillator's own clock)")
    pll = (ice40_pll if family == "ice40" else ecp5_pll)(f_in, want)
    if pll is None or abs(pll.f_out_mhz - want) > want / 100:
        raise DelayhwError(f"--clock-mhz {clock_hz / 1e6:g}: the {board}'s PLL cannot make it "
                           f"from {oscillator_hz / 1e6:g} MHz within 1%")
    return Clocking(board, family, oscillator_hz, pll)


class PllDomain(Elaboratable):
    """Drives the ``sync`` domain (:meth:`Clocking.sync_domain`, defined by the parent) from
    the board's oscillator through the PLL of ``clock``, held in reset until the PLL locks (on
    iCE40 :data:`RESET_US` microseconds more, for block RAM), the way Amaranth's own Lattice
    platforms reset their default domain. nextpnr derives the output clock's constraint from
    the oscillator's and the dividers ("Derived frequency constraint" in its log), so timing
    is checked at the PLL's clock."""

    def __init__(self, clock: Clocking):
        assert clock.pll is not None
        self.clock = clock

    def elaborate(self, platform):
        m = Module()
        pad = platform.request(platform.default_clk, dir="-")
        clk, lock = Signal(name="pll_clk"), Signal(name="pll_lock")
        if self.clock.family == "ice40":
            m.submodules.pll = self.clock.pll.instance(pad.io, clk, lock)
            # block RAM reads as zero for ~3 us after configuration: hold the design in reset
            # (a synchronous one, as Amaranth's iCE40 platform does) until then
            m.domains.por = ClockDomain("por", reset_less=True, local=True)
            m.d.comb += [ClockSignal("por").eq(clk), ClockSignal("sync").eq(clk)]
            delay = max(1, int(RESET_US * 1e-6 * self.clock.hz))
            timer, ready, locked = Signal(range(delay + 1)), Signal(), Signal()
            m.submodules.lock_sync = FFSynchronizer(lock, locked, o_domain="por")
            with m.If(~locked):
                m.d.por += [timer.eq(0), ready.eq(0)]
            with m.Elif(timer == delay):
                m.d.por += ready.eq(1)
            with m.Else():
                m.d.por += timer.eq(timer + 1)
            m.d.comb += ResetSignal("sync").eq(~ready)
        else:
            m.submodules.clk_buf = buf = io.Buffer("i", pad)
            m.submodules.pll = self.clock.pll.instance(buf.i, clk, lock)
            # as Amaranth's ECP5 platform: no reset logic in the fabric, the global set/reset
            # (SGSR) held until the PLL has locked, through two flip-flops it does not reset
            gsr0, gsr1 = Signal(), Signal()
            m.submodules += [
                Instance("FD1S3AX", p_GSR="DISABLED", i_CK=clk, i_D=lock, o_Q=gsr0),
                Instance("FD1S3AX", p_GSR="DISABLED", i_CK=clk, i_D=gsr0, o_Q=gsr1),
                Instance("SGSR", i_CLK=clk, i_GSR=gsr1)]
            m.d.comb += ClockSignal("sync").eq(clk)
        return m
