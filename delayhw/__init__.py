"""delayhw: spiking networks with learned synaptic delays, in bit-exact verified hardware.

Stable API (docs/design.md section 4): :func:`load_model`, :func:`save_model`,
:func:`delayhw.golden.run` returning a :class:`Result`, and :class:`DelayhwError`.
"""

from . import golden
from .errors import DelayhwError
from .formats import Inputs, Result, load_input, load_model, load_result, save_input, save_model
from .spec import Layer, Model

__version__ = "0.1.0"

__all__ = ["DelayhwError", "Layer", "Model", "Inputs", "Result", "golden", "load_model",
           "save_model", "load_input", "save_input", "load_result", "__version__"]
