"""The PyTorch trainer (``delayhw.train``): learnable per-synapse delays, LIF layers with
surrogate gradients, quantisation-aware fine-tuning and export to a delayhw model file.

Modules: :mod:`.kernels` (delay spreading and schedules), :mod:`.layers` (the float network),
:mod:`.quant` (widths, scales, the exact integer forward, export), :mod:`.data` (tasks),
:mod:`.loop` (training), :mod:`.nir_io` (NIR), :mod:`.plots`, and :mod:`.api`
(:func:`~delayhw.train.api.train_task`, the one-call entry point). Imports only the delayhw
core (spec, formats, golden, errors) plus torch and friends; importing this package does not
import torch.
"""
