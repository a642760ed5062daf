"""The scheme plug-ins (gateware/schemes/, issue 10 item 7): every registered scheme provides
an engine and a full cost model, and a scheme registered in REGISTRY alone is what the shape,
the manifest and the board fit check use (no caller knows a scheme by name)."""

import pytest
from amaranth.hdl import Fragment

from delayhw import netgen
from delayhw.boards.fit import logic_estimate
from delayhw.gateware import schemes, verilog
from delayhw.gateware.core import Core, built_memory_bits
from delayhw.gateware.layer import LayerEngine
from delayhw.gateware.schemes.cost import SchemeCost
from delayhw.gateware.schemes.fifo_cost import FifoCost
from delayhw.gateware.shape import SCHEMES, CoreShape


@pytest.mark.parametrize("name", SCHEMES)
def test_every_registered_scheme_provides_the_whole_interface(name):
    assert issubclass(schemes.engine(name), LayerEngine)
    cost_class = schemes.cost_model(name)
    assert issubclass(cost_class, SchemeCost) and not cost_class.__abstractmethods__
    assert isinstance(cost_class.cycles_note, str)
    first, extra = cost_class.lut_per_bit
    assert first >= 0 and extra >= 0
    shape = CoreShape.from_model(netgen.example_model(), 2, name)
    cost = shape.cost
    assert isinstance(cost, cost_class) and cost.shape is shape
    assert cost.cycles_per_step() == shape.cycles_per_step() > 0
    assert cost.cycles_per_step([1, 1], [0, 0]) <= cost.cycles_per_step()
    assert isinstance(cost.cycles_formula(), str) and cost.cycles_formula()
    assert all(cost.clear_walk(l) >= 1 for l in shape.layers)
    bits = cost.memory_bits()
    assert "total" not in bits and all(v >= 0 for v in bits.values())
    assert shape.memory_bits() == bits | {"total": sum(bits.values())}
    assert all(isinstance(v, int) and v > 0 for v in cost.delay_storage().values())


def test_a_cost_model_that_leaves_out_a_part_is_refused():
    with pytest.raises(TypeError, match="lut_per_bit"):
        class NoLogic(SchemeCost):          # noqa: F841 - defining it is the test
            cycles_note = ""

    class NoFormula(SchemeCost):
        cycles_note, lut_per_bit = "", (0.0, 0.0)
    with pytest.raises(TypeError, match="abstract"):
        NoFormula(None)


class ToyCost(FifoCost):
    """A third scheme's cost model (its engine borrowed from fifo), with figures of its own."""
    cycles_note = "; toy: the fifo figure plus 1000"
    lut_per_bit = (100.0, 0.0)

    def cycles_per_step(self, source_spikes=None, recurrent_spikes=None):
        return super().cycles_per_step() + 1000

    def cycles_formula(self):
        return "toy formula"

    def clear_walk(self, layer):
        return 12345


def test_a_third_scheme_is_one_registry_entry_that_every_caller_reads(monkeypatch):
    monkeypatch.setitem(schemes.REGISTRY, "toy", schemes.Scheme(engine="fifo:FifoLayer",
                                                                 cost=ToyCost))
    model = netgen.example_model()
    fifo, toy = (CoreShape.from_model(model, 1, name) for name in ("fifo", "toy"))
    assert toy.cycles_per_step() == fifo.cycles_per_step() + 1000
    assert toy.clear_cycles() == 12345 + 2
    assert toy.cycles_formula() == "toy formula"
    # the manifest: formula, value, what the value assumes, memory bits
    core = Core(toy, model)
    assert built_memory_bits(core) == toy.memory_bits() == fifo.memory_bits()
    layers = {name: sub for sub, name, _ in Fragment.get(core, None).subfragments}
    assert type(layers["layer0"].origins[0]) is schemes.engine("fifo")
    info = verilog.manifest(core, "x.v")
    assert info["parameters"]["scheme"] == "toy"
    assert info["cycles_per_step"] == {
        "formula": "toy formula", "value": fifo.cycles_per_step() + 1000,
        "assumes": "output stream always ready; inputs sent as fast as accepted; toy: the "
                   "fifo figure plus 1000"}
    assert info["memory_bits"] == fifo.memory_bits()
    # the board fit check's logic rule adds the scheme's LUT per datapath bit
    width = sum(l.v_bits + l.acc_bits + l.w_bits + l.d_bits for l in toy.layers)
    assert abs(logic_estimate(toy, "ecp5") - logic_estimate(fifo, "ecp5") - 100 * width) <= 1


def test_an_unregistered_scheme_is_refused_with_the_registered_names():
    from delayhw.errors import DelayhwError
    with pytest.raises(DelayhwError, match=r"scheme: 'toy' is not available; choose one of "
                                           r"\('fifo', 'ring'\)"):
        CoreShape.from_model(netgen.example_model(), 1, "toy")
