"""Resource bounds checked before anything big is allocated (docs/design.md section 9).

One memory budget (default 4 GiB, environment variable ``DELAYHW_MEMORY_BUDGET``, e.g.
``16G``, ``512M`` or a byte count) bounds what one file's arrays may declare and what one
golden-model run may need; a file or run over it is refused with a one-line error before
its data is read, instead of ending in a MemoryError or the OOM killer.
"""

from __future__ import annotations

import os
import re

from .errors import DelayhwError

__all__ = ["BUDGET_ENV", "DEFAULT_BUDGET", "memory_budget", "check_memory", "fmt_bytes",
           "META_MAX_CHARS", "JSON_MAX_DEPTH", "JSON_MAX_INT_DIGITS"]

BUDGET_ENV = "DELAYHW_MEMORY_BUDGET"
DEFAULT_BUDGET = 4 << 30
#: A model file's ``meta`` JSON: at most this many characters, this deep, ints this long.
META_MAX_CHARS = 1 << 20
JSON_MAX_DEPTH = 32
JSON_MAX_INT_DIGITS = 20

_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def memory_budget() -> int:
    """Bytes one file or one run may use: ``$DELAYHW_MEMORY_BUDGET`` or 4 GiB."""
    text = os.environ.get(BUDGET_ENV, "").strip()
    if not text:
        return DEFAULT_BUDGET
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?", text, re.IGNORECASE)
    if not match or float(match.group(1)) <= 0:
        raise DelayhwError(f"{BUDGET_ENV}: must be a size such as 4G, 512M or 1000000, "
                           f"got {text!r}")
    return int(float(match.group(1)) * _UNITS[match.group(2).upper()])


def fmt_bytes(n: int | float) -> str:
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{int(n)} bytes"


def check_memory(source: str, field: str, nbytes: int | float, what: str) -> None:
    """Refuse (DelayhwError) work needing ``nbytes`` when that exceeds the budget."""
    budget = memory_budget()
    if nbytes > budget:
        raise DelayhwError(f"{source}: {field}: {what} needs about {fmt_bytes(nbytes)}, more "
                           f"than the memory budget of {fmt_bytes(budget)} (set {BUDGET_ENV} "
                           f"to allow more)")
