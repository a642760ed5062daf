"""Verilog generation: a core's Verilog, the same design as Yosys RTLIL, and a JSON manifest
describing both (docs/design.md section 5).

The RTLIL is what synthesis should read: Yosys's Verilog frontend is very slow on large
initialised memories (docs/design.md section 10), ``read_rtlil`` is not. Both files come from one
elaboration: Amaranth's RTLIL is written first and the Verilog is made from it by Yosys
(what ``amaranth.back.verilog.convert`` does internally)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from amaranth.back import rtlil, verilog
from amaranth.hdl import Shape
from amaranth.lib import wiring

from delayhw.spec import Model, Reset

from . import wire
from .core import Core
from .shape import MAX_STEPS, CoreShape
from .wire import Field, InKind, OutKind, Param

TOP = "delayhw_core"
MANIFEST_FORMAT = "delayhw-core-manifest"
VERILOG_FILE = f"{TOP}.v"
RTLIL_FILE = f"{TOP}.il"


def ports(core: Core) -> list[dict[str, Any]]:
    """The top-level ports of the generated module, as Amaranth names them."""
    out = [{"name": "clk", "direction": "input", "width": 1},
           {"name": "rst", "direction": "input", "width": 1}]
    for path, member, _ in core.signature.flatten(core):
        out.append({"name": "__".join(str(p) for p in path),
                    "direction": "input" if member.flow == wiring.In else "output",
                    "width": Shape.cast(member.shape).width})
    return out


def manifest(core: Core, verilog_file: str, model_file: str | None = None,
             rtlil_file: str | None = None) -> dict[str, Any]:
    shape = core.shape
    model_info = None
    if model_file is not None:
        digest = hashlib.sha256(Path(model_file).read_bytes()).hexdigest()
        model_info = {"file": str(model_file), "sha256": digest}
    return {
        "format": MANIFEST_FORMAT, "version": 1, "top": TOP, "verilog": verilog_file,
        "rtlil": rtlil_file,
        "model": model_info,
        "parameters": {"scheme": shape.scheme, "lanes": shape.lanes,
                       "out_fifo_depth": shape.out_fifo_depth, "n_inputs": shape.n_inputs,
                       "max_steps": shape.max_steps, "score_bits": shape.score_bits,
                       "layers": [dict(l.__dict__, acc_bits=l.acc_bits, d_bits=l.d_bits,
                                       groups=l.groups(shape.lanes)) for l in shape.layers],
                       "shape_key": shape.key},
        "ports": ports(core),
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
    }


def convert(core: Core) -> str:
    """The core's Verilog text (module :data:`TOP`)."""
    return verilog.convert(core, name=TOP, emit_src=False)


def generate(model: Model, out_dir: Path, *, lanes: int = 1, scheme: str = "fifo",
             max_steps: int = MAX_STEPS, model_file: str | None = None,
             **shape_options) -> dict[str, Any]:
    """Write ``out_dir/delayhw_core.v`` (memories initialised from ``model``), the same design
    as ``out_dir/delayhw_core.il`` (RTLIL, for synthesis) and ``out_dir/manifest.json``, which
    names both; return the manifest. ``shape_options`` go to :meth:`CoreShape.from_model`."""
    core = Core(CoreShape.from_model(model, lanes, scheme, max_steps, **shape_options), model)
    rtlil_text = rtlil.convert(core, name=TOP, emit_src=False)
    # the Verilog from the same RTLIL text (one elaboration of a possibly huge core): this is
    # amaranth.back.verilog.convert's own last step
    verilog_text = verilog._convert_rtlil_text(rtlil_text)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / VERILOG_FILE).write_text(verilog_text)
    (out_dir / RTLIL_FILE).write_text(rtlil_text)
    info = manifest(core, VERILOG_FILE, model_file, rtlil_file=RTLIL_FILE)
    (out_dir / "manifest.json").write_text(json.dumps(info, indent=2) + "\n")
    return info
