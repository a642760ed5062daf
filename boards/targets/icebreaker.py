"""1BitSquared iCEBreaker: iCE40UP5K, 12 MHz oscillator, FT2232H UART on the USB cable."""

from amaranth_boards.icebreaker import ICEBreakerPlatform

from ..target import ICE40UP5K, Board

TARGETS = [
    Board("icebreaker", "iCEBreaker (iCE40UP5K)", ICEBreakerPlatform, ICE40UP5K,
          clock_hz=12e6, baud=1_000_000, leds=(("led_g", 0), ("led_r", 0)), synth_opts="-dsp",
          memory="spram",
          notes="UART on the FT2232H's second channel (/dev/ttyUSB1 on Linux); the largest "
                "weight/delay memories in SPRAM, loaded by `delayhw run`"),
]
