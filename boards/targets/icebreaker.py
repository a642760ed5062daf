"""1BitSquared iCEBreaker: iCE40UP5K, 12 MHz oscillator, FT2232H UART on the USB cable.

Core clock 16.125 MHz from the PLL (the nearest to 16 MHz it makes; it makes nothing below 16
MHz), 14-26% under the demo core's Fmax on this FPGA, 18.8-21.7 MHz (docs/boards.md); 1 Mbaud
is 16 cycles per bit, 0.8% fast."""

from amaranth_boards.icebreaker import ICEBreakerPlatform

from ..target import ICE40UP5K, Board

TARGETS = [
    Board("icebreaker", "iCEBreaker (iCE40UP5K)", ICEBreakerPlatform, ICE40UP5K,
          oscillator_hz=12e6, clock_hz=16e6, baud=1_000_000,
          leds=(("led_g", 0), ("led_r", 0)), synth_opts="-dsp", memory="spram",
          notes="UART on the FT2232H's second channel (/dev/ttyUSB1 on Linux); the largest "
                "weight/delay memories in SPRAM, loaded by `delayhw run`"),
]
