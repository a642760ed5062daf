"""Verilog generation: a core's Verilog, the same design as Yosys RTLIL, an instantiation
template and a JSON manifest describing them (docs/design.md section 5; as an IP block with
AXI4-Stream ports, :mod:`delayhw.gateware.ip` and docs/ip.md).

The RTLIL is what synthesis should read: Yosys's Verilog frontend is very slow on large
initialised memories (docs/design.md section 10), ``read_rtlil`` is not. Both files come from one
elaboration: Amaranth's RTLIL is written first and the Verilog is made from it by Yosys
(what ``amaranth.back.verilog.convert`` does internally)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from amaranth import ClockDomain, Elaboratable, Module, Signal
from amaranth.back import rtlil, verilog
from amaranth.hdl import Shape
from amaranth.lib import wiring

from delayhw.spec import Model, Reset

from . import wire
from .core import Core
from .ip import DEFAULT_TOP, Interface, axis_ports, instance_template, timing
from .shape import MAX_STEPS, CoreShape
from .wire import Field, InKind, OutKind, Param

TOP = DEFAULT_TOP
MANIFEST_FORMAT = "delayhw-core-manifest"
VERILOG_FILE = f"{TOP}.v"
RTLIL_FILE = f"{TOP}.il"


class AxisCore(Elaboratable):
    """The AXI4-Stream shell around ``core`` (:mod:`delayhw.gateware.ip`); :attr:`ports` maps
    each top-level port name (:func:`axis_ports`) to its signal; :meth:`signals` lists them
    for Amaranth's converters (which name each port after its signal). A top level only: it
    defines the ``sync`` domain from ``aclk`` and ``aresetn``."""

    def __init__(self, core, tlast: str = "sample"):
        self.core, self.tlast = core, tlast
        self.ports = {p["name"]: Signal(p["width"], name=p["name"])
                      for p in axis_ports(core.shape.score_bits)}

    def signals(self) -> list[Signal]:
        return list(self.ports.values())

    def elaborate(self, platform):
        m = Module()
        core, port = self.core, self.ports
        m.domains.sync = cd = ClockDomain("sync")
        m.d.comb += [cd.clk.eq(port["aclk"]), cd.rst.eq(~port["aresetn"])]
        m.submodules.core = core
        for stream in ("inputs", "config"):
            endpoint = getattr(core, stream)
            width = len(endpoint.payload.as_value())
            m.d.comb += [endpoint.payload.eq(port[f"s_axis_{stream}_tdata"][:width]),
                         endpoint.valid.eq(port[f"s_axis_{stream}_tvalid"]),
                         port[f"s_axis_{stream}_tready"].eq(endpoint.ready)]
        kind = core.outputs.payload.kind
        last = kind == OutKind.SAMPLE
        if self.tlast == "step":
            last = last | (kind == OutKind.STEP)
        m.d.comb += [port["m_axis_outputs_tdata"].eq(core.outputs.payload),
                     port["m_axis_outputs_tvalid"].eq(core.outputs.valid),
                     core.outputs.ready.eq(port["m_axis_outputs_tready"]),
                     port["m_axis_outputs_tlast"].eq(last), port["status"].eq(core.status)]
        return m


def ports(core: Core, interface: Interface = Interface()) -> list[dict[str, Any]]:
    """The top-level ports of the generated module: as Amaranth names them (``native``), or
    the AXI4-Stream shell's (:class:`AxisCore`)."""
    if interface.kind == "axis":
        return axis_ports(core.shape.score_bits)
    out = [{"name": "clk", "direction": "input", "width": 1},
           {"name": "rst", "direction": "input", "width": 1}]
    for path, member, _ in core.signature.flatten(core):
        out.append({"name": "__".join(str(p) for p in path),
                    "direction": "input" if member.flow == wiring.In else "output",
                    "width": Shape.cast(member.shape).width})
    return out


def manifest(core: Core, verilog_file: str, model_file: str | None = None,
             rtlil_file: str | None = None, interface: Interface = Interface(),
             template_file: str | None = None) -> dict[str, Any]:
    shape = core.shape
    model_info = None
    if model_file is not None:
        digest = hashlib.sha256(Path(model_file).read_bytes()).hexdigest()
        model_info = {"file": str(model_file), "sha256": digest}
    return {
        "format": MANIFEST_FORMAT, "version": 1, "top": interface.top, "verilog": verilog_file,
        "rtlil": rtlil_file, "instance_template": template_file,
        "interface": {"kind": interface.kind, "tlast": interface.tlast},
        "model": model_info,
        "parameters": {"scheme": shape.scheme, "lanes": shape.lanes,
                       "out_fifo_depth": shape.out_fifo_depth, "n_inputs": shape.n_inputs,
                       "max_steps": shape.max_steps, "score_bits": shape.score_bits,
                       "layers": [dict(l.__dict__, acc_bits=l.acc_bits, d_bits=l.d_bits,
                                       groups=l.groups(shape.lanes)) for l in shape.layers],
                       "shape_key": shape.key},
        "ports": ports(core, interface),
        "payloads": {"inputs": wire.INPUT.flat(),
                     "outputs": wire.output(shape.score_bits).flat(),
                     "config": wire.CONFIG.flat(),
                     "status": wire.STATUS.flat()},
        "codes": {"input_kind": {k.name: k.value for k in InKind},
                  "output_kind": {k.name: k.value for k in OutKind},
                  "config_field": {k.name: k.value for k in Field},
                  "config_param": {k.name: k.value for k in Param},
                  "reset": {r.value: r.zero_bit for r in Reset}},
        "memory_bits": shape.memory_bits(),
        "cycles_per_step": {"formula": shape.cycles_formula(), "value": shape.cycles_per_step(),
                            "assumes": "output stream always ready; inputs sent as fast as "
                                       "accepted" + shape.cost.cycles_note},
        "timing": timing(shape, interface),
    }


def convert_rtlil(core: Core, interface: Interface = Interface()) -> str:
    """The RTLIL text of ``core`` with ``interface``'s ports, as module ``interface.top``."""
    if interface.kind == "axis":
        shell = AxisCore(core, interface.tlast)
        return rtlil.convert(shell, name=interface.top, ports=shell.signals(), emit_src=False)
    return rtlil.convert(core, name=interface.top, emit_src=False)


def convert(core: Core, interface: Interface = Interface()) -> str:
    """The core's Verilog text (module ``interface.top``, :data:`TOP` by default)."""
    if interface == Interface():
        return verilog.convert(core, name=TOP, emit_src=False)
    return verilog._convert_rtlil_text(convert_rtlil(core, interface))


def generate(model: Model, out_dir: Path, *, lanes: int = 1, scheme: str = "fifo",
             max_steps: int = MAX_STEPS, model_file: str | None = None,
             interface: Interface = Interface(), **shape_options) -> dict[str, Any]:
    """Write ``out_dir/TOP.v`` (module ``TOP`` = ``interface.top``, memories initialised from
    ``model``, ports named by ``interface``), the same design as ``out_dir/TOP.il`` (RTLIL,
    for synthesis), an instantiation template ``out_dir/TOP_inst.v`` and
    ``out_dir/manifest.json``, which names them; return the manifest. ``shape_options`` go
    to :meth:`CoreShape.from_model`."""
    core = Core(CoreShape.from_model(model, lanes, scheme, max_steps, **shape_options), model)
    rtlil_text = convert_rtlil(core, interface)
    # the Verilog from the same RTLIL text (one elaboration of a possibly huge core): this is
    # amaranth.back.verilog.convert's own last step
    verilog_text = verilog._convert_rtlil_text(rtlil_text)
    top = interface.top
    files = {"verilog": f"{top}.v", "rtlil": f"{top}.il", "template": f"{top}_inst.v"}
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / files["verilog"]).write_text(verilog_text)
    (out_dir / files["rtlil"]).write_text(rtlil_text)
    info = manifest(core, files["verilog"], model_file, rtlil_file=files["rtlil"],
                    interface=interface, template_file=files["template"])
    (out_dir / files["template"]).write_text(instance_template(top, info["ports"]))
    (out_dir / "manifest.json").write_text(json.dumps(info, indent=2) + "\n")
    return info
