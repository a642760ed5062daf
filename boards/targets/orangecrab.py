"""Good Stuff Department (Greg Davill) OrangeCrab r0.2: ECP5 25F (speed grade 8), 48 MHz oscillator; core
clock 64 MHz from the PLL (the demo core reaches 83 MHz on it, docs/boards.md). The board has no
USB-serial chip: the UART is on the Feather header (pin 0 = FPGA RX, pin 1 = FPGA TX) for a
3.3 V USB-serial adapter. The bitstream is a plain .bit (add the DFU suffix with
``dfu-suffix -v 1209 -p 5af0 -a top.bit`` to load it with dfu-util, or use openFPGALoader)."""

from amaranth.build import Attrs, Pins, Resource, Subsignal
from amaranth.vendor import LatticeECP5Platform
from amaranth_boards.orangecrab_r0_2 import OrangeCrabR0_2_25FPlatform

from ..target import ECP5_25F, FT232R, Board


class OrangeCrab25F(OrangeCrabR0_2_25FPlatform):
    """The amaranth-boards platform without its dfu-suffix step (not a pip tool) and with a
    UART on the Feather header."""

    required_tools = LatticeECP5Platform.required_tools
    command_templates = LatticeECP5Platform.command_templates

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.add_resources([Resource(
            "uart", 0, Subsignal("rx", Pins("0", dir="i", conn=("io", 0))),
            Subsignal("tx", Pins("1", dir="o", conn=("io", 0))), Attrs(IO_TYPE="LVCMOS33"))])


TARGETS = [
    Board("orangecrab-25f", "OrangeCrab r0.2 (LFE5U-25F)", OrangeCrab25F, ECP5_25F,
          oscillator_hz=48e6, clock_hz=64e6, bridge=FT232R, input_ram="lut",
          leds=(("rgb_led", 0, "g"), ("rgb_led", 0, "r")),
          notes="UART on Feather pins 0 (RX) / 1 (TX), 3.3 V adapter; RGB LED green busy, red error"),
]
