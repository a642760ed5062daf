"""The DCLS package's delay layer in place of delayhw.train's, for the benches that compare
the two (bench/train.py, bench/audio.py)."""

from __future__ import annotations

import copy


def dcls_net(net):
    """A copy of ``net`` whose feedforward DelayedLinear maps are Dcls1d layers holding the
    same weights and delays."""
    import torch
    import torch.nn.functional as F
    from DCLS.construct.modules import Dcls1d
    from torch import nn

    from delayhw.train.kernels import round_half_up
    from delayhw.train.layers import delay_conv

    class DclsDelayed(nn.Module):
        def __init__(self, lin):
            super().__init__()
            self.d_max, self.kernel, self.hard, self.sig = lin.d_max, lin.kernel, False, None
            self.conv = Dcls1d(lin.n_in, lin.n_out, kernel_count=1,
                               dilated_kernel_size=lin.d_max + 1, bias=False, version="gauss")
            self.conv.SIG.requires_grad_(False)
            with torch.no_grad():
                self.conv.weight.copy_(lin.weight.detach().unsqueeze(-1))
                self.conv.P.copy_(self._position(lin.delay.detach()).reshape(self.conv.P.shape))

        def _position(self, delay):
            # Dcls1d's kernel index is P + (d_max+1)//2; left padding by d_max makes index m
            # a delay of d_max - m
            return (self.d_max - delay) - (self.d_max + 1) // 2

        def delays(self):
            return self.d_max - (self.conv.P.detach()[0, :, :, 0] + (self.d_max + 1) // 2)

        def forward(self, x):
            if self.hard:
                # Dcls1d clamps P to +-(d_max+1)//2: with d_max odd the kernel's last position
                # is one past index d_max (a delay of -1), rounded to the nearest tap, 0
                delay = round_half_up(self.delays()).clamp(0, self.d_max)
                taps = self.conv.weight[:, :, 0].unsqueeze(-1) * F.one_hot(
                    delay.long(), self.d_max + 1).to(x.dtype)
                return delay_conv(x, taps, self.d_max)
            if self.sig != self.kernel.width:   # once per epoch; DCLS adds 0.27 to |SIG|
                self.sig = self.kernel.width
                with torch.no_grad():
                    self.conv.SIG.fill_(max(self.sig - 0.27, 0.0))
            y = self.conv(F.pad(x.transpose(1, 2), (self.d_max, 0)))
            return y[:, :, :x.shape[1]].transpose(1, 2)

        def delay_parameters(self):
            return [] if self.hard else [self.conv.P]

        def clamp_(self):
            self.conv.clamp_parameters()

        def round_delays_(self):
            self.hard = True
            self.conv.P.requires_grad_(False)

    other = copy.deepcopy(net)
    for layer in other.layers:
        layer.ff = DclsDelayed(layer.ff)
    return other
