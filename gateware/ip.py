"""The core as an IP block for other designs (docs/ip.md): the port naming of the generated
Verilog (Amaranth's own, or AXI4-Stream), an instantiation template, and the timing notes of
the manifest.

Pure Python (the CLI imports it); the shell itself is
:class:`delayhw.gateware.verilog.AxisCore`. With ``interface="axis"`` the top module is a
thin shell around the unchanged core: renamed ports, ``tdata`` padded to whole bytes, an
active-low reset and a ``tlast`` on the output stream; no register is added, so every cycle
is the native core's.

* ``aclk``; ``aresetn``: synchronous, active low (``rst = ~aresetn``).
* ``s_axis_inputs_{tdata,tvalid,tready}``: input events (:data:`wire.INPUT`, bit 0 up);
  ``s_axis_config_{tdata,tvalid,tready}``: configuration writes (:data:`wire.CONFIG`). The
  slave streams have no ``tlast``: steps and samples are framed by the words themselves
  (STEP and SAMPLE events). Pad bits above the word are ignored.
* ``m_axis_outputs_{tdata,tvalid,tready,tlast}``: output events (:func:`wire.output`; pad
  bits zero). ``tlast`` marks the SAMPLE event (``tlast="sample"``: one packet per sample,
  its spikes, STEP markers and scores) or every STEP and SAMPLE event (``tlast="step"``: one
  packet per step, the scores and SAMPLE event of a sample as one more packet).
* ``status``: as the native core's (not a stream).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from delayhw.errors import DelayhwError

from . import wire

INTERFACES = ("native", "axis")
TLAST = ("sample", "step")
DEFAULT_TOP = "delayhw_core"
#: Verilog-2005 and SystemVerilog keywords a module name must not be (the common ones; a name
#: matching the identifier rule and none of these is accepted)
_RESERVED = set("""always and assign automatic begin buf case casex casez cell class config
deassign default defparam design disable edge else end endcase endconfig endfunction
endgenerate endmodule endprimitive endspecify endtable endtask event for force forever fork
function generate genvar if ifnone initial inout input instance integer join large liblist
library localparam logic macromodule medium module nand negedge nmos nor not or output
parameter posedge primitive pulldown pullup real realtime reg release repeat rtran scalared
signed small specify specparam strong0 strong1 supply0 supply1 table task time tran tri
tri0 tri1 triand trior trireg unsigned use vectored wait wand weak0 weak1 while wire wor
xnor xor""".split())


def byte_width(bits: int) -> int:
    """``bits`` rounded up to whole bytes (AXI4-Stream ``TDATA`` is a number of bytes)."""
    return -(-bits // 8) * 8


@dataclass(frozen=True)
class Interface:
    """How the generated module is named and wired: ``kind`` (:data:`INTERFACES`), ``tlast``
    (``axis`` only; default ``sample``) and the module name ``top`` (submodules are named
    ``top.…``, so two cores of different names can sit in one design). Raises
    :class:`DelayhwError` naming the option for a bad value or combination."""

    kind: str = "native"
    tlast: str | None = None
    top: str = DEFAULT_TOP

    def __post_init__(self):
        if self.kind not in INTERFACES:
            raise DelayhwError(f"--interface: {self.kind!r} is not one of {INTERFACES}")
        if self.tlast is not None and self.kind != "axis":
            raise DelayhwError(f"--tlast: only with --interface axis (the {self.kind} "
                               f"interface has no TLAST)")
        if self.kind == "axis" and self.tlast is None:
            object.__setattr__(self, "tlast", "sample")
        if self.tlast is not None and self.tlast not in TLAST:
            raise DelayhwError(f"--tlast: {self.tlast!r} is not one of {TLAST}")
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,127}", self.top) \
                or self.top in _RESERVED:
            raise DelayhwError(f"--top: {self.top!r} is not a usable Verilog module name "
                               f"(a letter or _, then letters, digits or _; at most 128; "
                               f"not a keyword)")

    @property
    def clock(self) -> str:
        return "aclk" if self.kind == "axis" else "clk"

    @property
    def reset(self) -> str:
        return "aresetn" if self.kind == "axis" else "rst"


def axis_ports(score_bits: int) -> list[dict[str, Any]]:
    """The ports of the AXI4-Stream shell of a core whose scores are ``score_bits`` wide, in
    the manifest's form (name, direction, width), in header order."""
    i, o = "input", "output"
    widths = {"inputs": wire.INPUT.width, "config": wire.CONFIG.width,
              "outputs": wire.output(score_bits).width}
    rows = [("aclk", i, 1), ("aresetn", i, 1)]
    for stream in ("inputs", "config"):
        rows += [(f"s_axis_{stream}_tdata", i, byte_width(widths[stream])),
                 (f"s_axis_{stream}_tvalid", i, 1), (f"s_axis_{stream}_tready", o, 1)]
    rows += [("m_axis_outputs_tdata", o, byte_width(widths["outputs"])),
             ("m_axis_outputs_tvalid", o, 1), ("m_axis_outputs_tready", i, 1),
             ("m_axis_outputs_tlast", o, 1), ("status", o, wire.STATUS.width)]
    return [{"name": n, "direction": d, "width": w} for n, d, w in rows]


def instance_template(top: str, ports: list[dict[str, Any]]) -> str:
    """A Verilog snippet for the body of the module that uses the core: one wire per port
    (named ``{top}_{port}``) and an instance ``u_{top}`` connecting them."""
    name = max(len(p["name"]) for p in ports)
    lines = [f"// Instantiation template for {top} (generated by delayhw generate; see "
             f"manifest.json and docs/ip.md).",
             "// Paste into (or `include in) the body of the module that uses the core, and "
             "drive the inputs.", ""]
    for p in ports:
        width = f"[{p['width'] - 1}:0] " if p["width"] > 1 else ""
        lines.append(f"wire {width:<8}{top}_{p['name']};   // {p['direction']}")
    lines += ["", f"{top} u_{top} ("]
    for k, p in enumerate(ports):
        comma = "," if k < len(ports) - 1 else ""
        lines.append(f"    .{p['name']:<{name}} ({top}_{p['name']}){comma}")
    lines += [");", ""]
    return "\n".join(lines)


#: each native port's name in the AXI4-Stream shell (``m_axis_outputs_tlast`` has none)
AXIS_NAMES = {"clk": "aclk", "rst": "aresetn",
              "inputs__payload": "s_axis_inputs_tdata", "inputs__valid": "s_axis_inputs_tvalid",
              "inputs__ready": "s_axis_inputs_tready",
              "config__payload": "s_axis_config_tdata", "config__valid": "s_axis_config_tvalid",
              "config__ready": "s_axis_config_tready",
              "outputs__payload": "m_axis_outputs_tdata",
              "outputs__valid": "m_axis_outputs_tvalid",
              "outputs__ready": "m_axis_outputs_tready", "status": "status"}
#: outputs driven straight from flip-flops (native names); every other output is
#: combinational logic of registers, except the paths of :data:`COMBINATIONAL_PATHS`
REGISTERED_OUTPUTS = ("outputs__valid",)
#: (input, output) pairs joined by combinational logic: the input stream is held off while a
#: configuration write is presented
COMBINATIONAL_PATHS = (("config__valid", "inputs__ready"),)


def port_name(native: str, interface: Interface) -> str:
    """The name of the native port ``native`` under ``interface``."""
    return AXIS_NAMES[native] if interface.kind == "axis" else native


def timing(shape, interface: Interface) -> dict[str, Any]:
    """The manifest's timing notes: clock, reset, per-step and per-sample cycles (the cost
    model's, :class:`~delayhw.gateware.shape.CoreShape`) and which ports are registered
    (checked against the netlist by tests/test_gateware_ip.py)."""
    name = lambda native: port_name(native, interface)  # noqa: E731
    after_last = shape.sample_end_cycles() + shape.cost.sample_end_delay
    registered = [name(p) for p in REGISTERED_OUTPUTS]
    outputs = [name(p) for p in ("inputs__ready", "config__ready", "outputs__payload",
                                 "outputs__valid", "status")]
    if interface.kind == "axis":
        outputs.append("m_axis_outputs_tlast")
    return {
        "clock": {"port": interface.clock, "edge": "rising",
                  "note": "one clock domain: every register of the core is clocked by it"},
        "reset": {"port": interface.reset, "active": "low" if interface.kind == "axis" else "high",
                  "synchronous": True, "min_cycles": 1, "clear_cycles": shape.clear_cycles(),
                  "note": "sampled on the rising clock edge; one cycle suffices. State "
                          "(membranes, delays in flight, spikes, scores) is cleared, "
                          "configuration (weights, delays, biases, parameters) survives; the "
                          "core then walks its state memories for clear_cycles cycles with "
                          f"{name('inputs__ready')} low"},
        "step": {"cycles": shape.cycles_per_step(), "formula": shape.cycles_formula(),
                 "note": "from the cycle a STEP input is taken to the cycle the step's STEP "
                         "output event is queued, every source spiking, output always ready; "
                         "also the period of a stream of steps (the next step's inputs are "
                         "taken while a step computes)" + shape.cost.cycles_note},
        "sample": {"cycles_after_last_step": after_last,
                   "formula": "steps * step.cycles + cycles_after_last_step (score walk, "
                              "then the state clear), when no step has more input events "
                              "than the step before it has cycles and no event comes after "
                              "a sample's last STEP" + ("; an estimate where steps pipeline "
                              "(CoreShape.step_schedule is exact)"
                              if shape.cost.pipelined_steps else "")},
        "streams": {"words_per_cycle": 1,
                    "note": "each stream moves at most one word per cycle (valid and ready "
                            "high); the core stalls on output back-pressure, nothing is "
                            "dropped"},
        "config_write_cycles_max": 5,   # a write takes effect within 5 cycles (core.py)
        "ports": {"registered": registered,
                  "combinational_from_registers": [
                      p for p in outputs if p not in registered
                      and p not in {name(b) for _, b in COMBINATIONAL_PATHS}],
                  "combinational_paths": [[name(a), name(b)] for a, b in COMBINATIONAL_PATHS],
                  "note": "outputs driven from flip-flops, outputs decoded from registers only, "
                          "and the input-to-output paths through logic alone"},
    }
