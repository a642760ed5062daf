"""Radiona ULX3S: ECP5 25F or 85F (speed grade 6), 25 MHz oscillator, FT231X UART on the USB
port US1. Core clock 45 MHz from the PLL (the cores measured here reach 57-67 MHz on the 85F,
docs/boards.md): 15 cycles per bit at the FT231X's top rate, 3 Mbaud."""

from amaranth_boards.ulx3s import ULX3S_25F_Platform, ULX3S_85F_Platform

from ..target import ECP5_25F, ECP5_85F, FT231X, Board

TARGETS = [
    Board("ulx3s-25f", "ULX3S (LFE5U-25F)", ULX3S_25F_Platform, ECP5_25F, oscillator_hz=25e6,
          clock_hz=45e6, bridge=FT231X, input_ram="lut",
          notes="UART on US1 (FT231X); LEDs D0 busy, D1 error"),
    Board("ulx3s-85f", "ULX3S (LFE5U-85F)", ULX3S_85F_Platform, ECP5_85F, oscillator_hz=25e6,
          clock_hz=45e6, bridge=FT231X, input_ram="lut",
          notes="UART on US1 (FT231X); LEDs D0 busy, D1 error"),
]
