"""The small-components rule of docs/design.md section 1: no function in gateware/ or sim/
longer than :data:`MAX_LINES` lines (decorators and docstring included)."""

import ast
from pathlib import Path

import pytest

import delayhw

ROOT = Path(delayhw.__file__).parent.parent
MAX_LINES = 120


def long_functions(path: Path, root: Path, limit: int = MAX_LINES) -> list[str]:
    """``"file:line name (n lines)"`` (file relative to ``root``) of every function in
    ``path`` longer than ``limit`` lines."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            first = min([node.lineno] + [d.lineno for d in node.decorator_list])
            lines = node.end_lineno - first + 1
            if lines > limit:
                found.append(f"{path.relative_to(root)}:{node.lineno} {node.name} "
                             f"({lines} lines)")
    return found


@pytest.mark.parametrize("folder", ["gateware", "sim"])
def test_no_function_over_the_limit(folder):
    files = sorted((ROOT / folder).rglob("*.py"))
    assert files, f"no Python files under {ROOT / folder}"
    assert [f for path in files for f in long_functions(path, ROOT)] == []


def test_the_check_sees_a_long_function(tmp_path):
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_LINES))
    (tmp_path / "m.py").write_text(f"def short():\n    pass\n\n\ndef long():\n{body}\n")
    assert long_functions(tmp_path / "m.py", tmp_path) == [f"m.py:5 long ({MAX_LINES + 1} lines)"]
