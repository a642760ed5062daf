"""The CLI package's structure (issue 13 item 7, docs/design.md section 1): command modules import
``delayhw.cli.common`` and never the package that imports them, nothing below the CLI imports
it, and ``delayhw --help`` imports none of the heavy parts."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import delayhw
import delayhw.cli

ROOT = Path(delayhw.__file__).parent
CLI = Path(delayhw.cli.__file__).parent
PACKAGE_DIRS = {"delayhw": ROOT, "delayhw.gateware": ROOT.parent / "gateware",
                "delayhw.sim": ROOT.parent / "sim", "delayhw.train": ROOT.parent / "train",
                "delayhw.boards": ROOT.parent / "boards"}


def module_name(path: Path) -> str:
    for package, folder in sorted(PACKAGE_DIRS.items(), key=lambda kv: -len(str(kv[1]))):
        if path.is_relative_to(folder):
            parts = [package, *path.relative_to(folder).with_suffix("").parts]
            return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
    raise AssertionError(path)


def imports_of(path: Path, source: str | None = None) -> set[str]:
    """Every module ``path`` imports, at module level or inside functions, as absolute names
    (``from . import x`` counts as importing the package and, if it is one, submodule x)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(source or path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module
            found.add(target)
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                if sub.startswith("delayhw.cli.") and (CLI / f"{alias.name}.py").exists():
                    found.add(sub)
    return found


def cli_graph(sources: dict[Path, str] = {}) -> dict[str, set[str]]:
    """Which CLI modules each CLI module imports (``sources``: replacement texts)."""
    return {module_name(p): {m for m in imports_of(p, sources.get(p)) if m == "delayhw.cli"
                             or m.startswith("delayhw.cli.")}
            for p in sorted(CLI.glob("*.py"))}


def test_the_cli_is_a_package_of_command_groups_and_a_common_module():
    modules = set(cli_graph())
    assert {"delayhw.cli", "delayhw.cli.common", "delayhw.cli.hw", "delayhw.cli.train",
            "delayhw.cli.boards", "delayhw.cli.demo"} <= modules
    assert not list(ROOT.glob("cli_*.py")), "the old cli_*.py modules are back"


def check_layering(graph: dict[str, set[str]]) -> None:
    for module, targets in graph.items():
        if module != "delayhw.cli":
            assert "delayhw.cli" not in targets, f"{module} imports the package delayhw.cli"
        if module not in ("delayhw.cli", "delayhw.cli.common", "delayhw.cli.argtypes"):
            assert targets <= {"delayhw.cli.common"}, \
                f"{module} imports {sorted(targets - {'delayhw.cli.common'})}: command " \
                f"modules share code through delayhw.cli.common only"
    # common's one CLI import is the leaf module of checked argument types
    assert graph["delayhw.cli.common"] <= {"delayhw.cli.argtypes"}, \
        "common imports a CLI module other than argtypes"
    assert not graph.get("delayhw.cli.argtypes"), "argtypes imports another CLI module"


def test_no_cli_module_imports_the_module_that_imports_it():
    check_layering(cli_graph())


@pytest.mark.parametrize("late_import", ["from . import EXIT_OK", "import delayhw.cli",
                                         "from delayhw.cli import main",
                                         "from .boards import cmd_run"])
def test_the_layering_check_catches_a_command_module_importing_upwards(late_import):
    """The check can fail: a (function-level) import of the package or of a sibling
    command module is caught."""
    hw = CLI / "hw.py"
    source = hw.read_text() + f"\n\ndef _late():\n    {late_import}\n"
    with pytest.raises(AssertionError, match="delayhw.cli"):
        check_layering(cli_graph({hw: source}))


def test_nothing_below_the_cli_imports_it():
    for folder in PACKAGE_DIRS.values():
        for path in folder.rglob("*.py"):
            if path.is_relative_to(CLI) or path == ROOT / "__main__.py":
                continue
            used = {m for m in imports_of(path) if m.startswith("delayhw.cli")}
            assert not used, f"{path} imports {sorted(used)} (the CLI sits on top)"


def test_help_starts_without_the_heavy_parts():
    """docs/design.md section 1: torch, cocotb and amaranth (and rich, matplotlib, dask) only when
    a command needs them. The parser reads the --scheme/--lanes choices from
    delayhw.gateware.shape and the scheme registry, which are plain Python."""
    code = ("import sys, contextlib, io\n"
            "from delayhw.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            "    try: main(['--help'])\n"
            "    except SystemExit: pass\n"
            "heavy = ('torch', 'cocotb', 'amaranth', 'rich', 'matplotlib', 'distributed')\n"
            "print(' '.join(m for m in heavy if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == ""


def test_python_dash_m_delayhw_runs_the_cli():
    out = subprocess.run([sys.executable, "-m", "delayhw", "--version"], capture_output=True,
                         text=True)
    assert out.returncode == 0 and out.stdout.startswith("delayhw ")
