"""1BitSquared iCEBreaker: iCE40UP5K, 12 MHz oscillator, FT2232H UART on the USB cable.

Core clock 30 MHz from the PLL (exact: 12 x 80 / 32): the board top of the demo core reaches
39-40 MHz on this FPGA (docs/boards.md; the host link's frame checks and sender were
pipelined for it, the bare core reaches 42-44 MHz); 3 Mbaud, 10 cycles per bit, is the
FT2232H's fastest rate the clock divides with 8 cycles per bit or more."""

from amaranth_boards.icebreaker import ICEBreakerPlatform

from ..target import FT2232H, ICE40UP5K, Board

TARGETS = [
    Board("icebreaker", "iCEBreaker (iCE40UP5K)", ICEBreakerPlatform, ICE40UP5K,
          oscillator_hz=12e6, clock_hz=30e6, bridge=FT2232H,
          leds=(("led_g", 0), ("led_r", 0)), synth_opts="-dsp", memory="spram",
          notes="UART on the FT2232H's second channel (/dev/ttyUSB1 on Linux); the largest "
                "weight/delay memories in SPRAM, loaded by `delayhw run`"),
]
