"""The package's shape, read from its source with ``ast`` (nothing is imported): no import
circle, no import from a lower layer up to a higher one, no module over 400 lines, and every
exception class a :class:`foolkit.errors.FoolkitError`.

Each rule is a small function over plain data (a graph, a table of line counts, class
definitions); the ``*_catches_*`` tests feed it a fake that breaks the rule, so a checker that
never fires fails too.
"""
from __future__ import annotations

import ast
import builtins
from dataclasses import dataclass
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "foolkit"
MAX_LINES = 400

# Layers, low to high (issue #18). A module may import its own layer and the ones below.
LAYERS: list[tuple[str, ...]] = [
    ("foolkit._version", "foolkit.errors", "foolkit.norms"),
    ("foolkit.runtime",),
    ("foolkit.data",),
    ("foolkit.models",),
    ("foolkit.attacks",),
    ("foolkit.evaluation",),
    ("foolkit.analysis", "foolkit.defenses"),
    ("foolkit.report",),
    ("foolkit.experiments",),
    # the package itself (``import foolkit as fk``: its __init__ re-exports every layer) sits on top
    ("foolkit.commands", "foolkit.cli", "foolkit"),
]

# Upward imports that are allowed, each with its reason: (importer prefix, imported prefix).
# Only inside a function: a module-level one is never excused. (attacks -> models.wrappers,
# the isinstance import issue #18 tolerates, is downward in this order and needs no entry.)
ALLOWED_UPWARD: dict[tuple[str, str], str] = {
    ("foolkit.runtime.files", "foolkit.evaluation.universal_io"):
        "check_output(kind='perturbation') asks load_universal whether an existing PyTorch file is an "
        "earlier perturbation (it may be replaced); to go: the caller should pass that check in",
    ("foolkit.evaluation.sweep", "foolkit.report"):
        "sweep(report=True) ends by writing the HTML report of the merged store, the workflow's last step "
        "(fk.sweep's public signature); to go: a sweep workflow above report/",
}


@dataclass(frozen=True)
class Import:
    importer: str
    imported: str
    line: int
    module_level: bool  # runs when the importer is imported (not inside a function, not TYPE_CHECKING)

    def where(self) -> str:
        return f"{self.importer.replace('.', '/')}.py:{self.line}"


# --- reading the source -------------------------------------------------------------------

def module_files(root: Path = SRC) -> dict[str, Path]:
    """``foolkit.x.y`` -> its file (a package's name -> its ``__init__.py``)."""
    out = {}
    for path in sorted(root.rglob("*.py")):
        parts = ("foolkit",) + path.relative_to(root).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def imports_of(name: str, source: str, modules: set[str], is_package: bool = False) -> list[Import]:
    """foolkit modules that module ``name`` (source text ``source``) imports, relative imports
    resolved: ``from .a import b`` names ``pkg.a.b`` when that is a module, else ``pkg.a``."""
    package = name if is_package else name.rpartition(".")[0]
    found: list[Import] = []

    def add(target: str, node: ast.stmt, module_level: bool) -> None:
        if target in modules:
            found.append(Import(name, target, node.lineno, module_level))

    def visit(node: ast.AST, module_level: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import):
                for alias in child.names:
                    add(alias.name, child, module_level)
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    base_parts = package.split(".")
                    base_parts = base_parts[:len(base_parts) - (child.level - 1)]
                    base = ".".join(base_parts + ([child.module] if child.module else []))
                else:
                    base = child.module or ""
                for alias in child.names:
                    sub = f"{base}.{alias.name}"
                    add(sub if sub in modules else base, child, module_level)
            elif isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                visit(child, False)
            elif isinstance(child, ast.If) and _is_type_checking(child.test):
                for stmt in child.body:
                    visit(ast.Module(body=[stmt], type_ignores=[]), False)
                for stmt in child.orelse:
                    visit(ast.Module(body=[stmt], type_ignores=[]), module_level)
            else:
                visit(child, module_level)

    visit(ast.parse(source), True)
    return found


def package_imports(root: Path = SRC) -> list[Import]:
    files = module_files(root)
    names = set(files)
    return [imp for name, path in files.items()
            for imp in imports_of(name, path.read_text(), names, is_package=path.name == "__init__.py")]


# --- the rules ----------------------------------------------------------------------------

def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one node (or a self-import), each sorted:
    the import circles of ``graph`` (node -> nodes it imports)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    nodes = sorted(set(graph) | {t for ts in graph.values() for t in ts})
    counter = 0
    for start in nodes:
        if start in index:
            continue
        # iterative Tarjan: (node, iterator over its successors)
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        work = [(start, iter(sorted(graph.get(start, ()))))]
        while work:
            node, successors = work[-1]
            advanced = False
            for nxt in successors:
                if nxt not in index:
                    index[nxt] = low[nxt] = counter
                    counter += 1
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph.get(nxt, ())))))
                    advanced = True
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    top = stack.pop()
                    on_stack.discard(top)
                    component.append(top)
                    if top == node:
                        break
                if len(component) > 1 or node in graph.get(node, ()):
                    cycles.append(sorted(component))
    return sorted(cycles)


def layer_of(module: str, layers: list[tuple[str, ...]] = LAYERS) -> int:
    """Index in ``layers`` of the longest prefix that names ``module`` (or a package above it);
    the bare package name ``foolkit`` names only the package's ``__init__``."""
    best, best_len = -1, -1
    for i, prefixes in enumerate(layers):
        for prefix in prefixes:
            covers = module == prefix or ("." in prefix and module.startswith(prefix + "."))
            if covers and len(prefix) > best_len:
                best, best_len = i, len(prefix)
    if best < 0:
        raise AssertionError(f"{module} is in no layer: add it to LAYERS in {Path(__file__).name}")
    return best


def _allowed(imp: Import, allowed: dict[tuple[str, str], str]) -> bool:
    return any((imp.importer == a or imp.importer.startswith(a + ".")) and
               (imp.imported == b or imp.imported.startswith(b + ".")) and not imp.module_level
               for a, b in allowed)


def upward_imports(imports: list[Import], layers: list[tuple[str, ...]] = LAYERS,
                   allowed: dict[tuple[str, str], str] = ALLOWED_UPWARD) -> list[str]:
    """``file:line: importer (layer i) imports imported (layer j > i)`` for each upward import
    (module-level or inside a function); an ``allowed`` pair is excused only inside a function."""
    out = []
    for imp in imports:
        low, high = layer_of(imp.importer, layers), layer_of(imp.imported, layers)
        if high > low and not _allowed(imp, allowed):
            out.append(f"{imp.where()}: {imp.importer} (layer {low}) imports {imp.imported} (layer {high})")
    return out


def oversized(line_counts: dict[str, int], limit: int = MAX_LINES) -> list[str]:
    return [f"{name}: {n} lines (limit {limit})" for name, n in sorted(line_counts.items()) if n > limit]


@dataclass(frozen=True)
class ClassDef:
    module: str
    name: str
    bases: tuple[str, ...]  # dotted names as written: "ValueError", "torch.cuda.OutOfMemoryError"
    line: int


def class_defs(name: str, source: str) -> list[ClassDef]:
    return [ClassDef(name, node.name, tuple(ast.unparse(b) for b in node.bases), node.lineno)
            for node in ast.walk(ast.parse(source)) if isinstance(node, ast.ClassDef)]


def _builtin_exception(base: str) -> type | None:
    value = getattr(builtins, base, None)
    return value if isinstance(value, type) and issubclass(value, BaseException) else None


def exceptions_outside_foolkit_error(classes: list[ClassDef], base: str = "FoolkitError") -> list[str]:
    """Exception classes (any ancestor a built-in exception, or a base named ``*Error`` /
    ``*Exception`` from another library) that do not have ``base`` among their ancestors.
    Warnings are not errors and are not counted. Bases are matched by their last name."""
    by_name = {c.name: c for c in classes}

    def ancestors(cls: ClassDef, seen: frozenset[str] = frozenset()) -> set[str]:
        out: set[str] = set()
        for b in cls.bases:
            short = b.rpartition(".")[2]
            out.add(short)
            if short in by_name and short not in seen:
                out |= ancestors(by_name[short], seen | {cls.name})
        return out

    def is_exception(names: set[str]) -> bool:
        return any(_builtin_exception(n) is not None or n.endswith(("Error", "Exception")) for n in names)

    def is_warning(names: set[str]) -> bool:
        return any(n.endswith("Warning") for n in names)

    out = []
    for cls in classes:
        names = ancestors(cls)
        if cls.name == base or not is_exception(names) or is_warning(names):
            continue
        if base not in names:
            out.append(f"{cls.module.replace('.', '/')}.py:{cls.line}: {cls.name}({', '.join(cls.bases)}) "
                       f"is not a {base}")
    return out


# --- the package --------------------------------------------------------------------------

def test_no_import_circle():
    graph: dict[str, set[str]] = {}
    edges: dict[tuple[str, str], Import] = {}
    for imp in package_imports():
        if imp.module_level:
            graph.setdefault(imp.importer, set()).add(imp.imported)
            edges.setdefault((imp.importer, imp.imported), imp)
    problems = []
    for cycle in find_cycles(graph):
        members = set(cycle)
        lines = [edge.where() + f": imports {b}" for (a, b), edge in sorted(edges.items())
                 if a in members and b in members]
        problems.append(" <-> ".join(cycle) + "\n    " + "\n    ".join(lines))
    assert not problems, "import circles (module-level imports):\n" + "\n".join(problems)


def test_no_import_from_a_lower_layer_up():
    problems = upward_imports(package_imports())
    assert not problems, "imports up the layers:\n" + "\n".join(problems)


def test_every_module_is_in_a_layer():
    for name in module_files():
        layer_of(name)


def test_no_module_over_400_lines():
    counts = {name: len(path.read_text().splitlines()) for name, path in module_files().items()}
    problems = oversized(counts)
    assert not problems, "modules over the limit (split them):\n" + "\n".join(problems)


def test_every_exception_is_a_foolkit_error():
    classes = [c for name, path in module_files().items() for c in class_defs(name, path.read_text())]
    assert any(c.name == "FoolkitError" for c in classes)
    problems = exceptions_outside_foolkit_error(classes)
    assert not problems, "exception classes outside foolkit.errors.FoolkitError:\n" + "\n".join(problems)


# --- each checker fires on a fake that breaks its rule -------------------------------------

FAKE_MODULES = {"foolkit", "foolkit.norms", "foolkit.attacks", "foolkit.attacks.base", "foolkit.attacks.fgsm",
                "foolkit.models", "foolkit.models.wrappers", "foolkit.evaluation", "foolkit.evaluation.store"}


def test_imports_resolve_relative_and_absolute_names():
    source = """
from __future__ import annotations
from typing import TYPE_CHECKING
import torch
from .. import norms
from .base import Attack
from . import base
import foolkit.evaluation.store
if TYPE_CHECKING:
    from ..evaluation import store as _store
def f():
    from ..models.wrappers import Normalized
"""
    found = imports_of("foolkit.attacks.fgsm", source, FAKE_MODULES)
    assert [(i.imported, i.module_level) for i in found] == [
        ("foolkit.norms", True), ("foolkit.attacks.base", True), ("foolkit.attacks.base", True),
        ("foolkit.evaluation.store", True), ("foolkit.evaluation.store", False), ("foolkit.models.wrappers", False)]
    # in a package's __init__, "." is the package itself
    assert [i.imported for i in imports_of("foolkit.attacks", "from .fgsm import FGSM\nfrom . import base\n",
                                           FAKE_MODULES, is_package=True)] == ["foolkit.attacks.fgsm",
                                                                                "foolkit.attacks.base"]


def test_find_cycles_catches_a_circle():
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert find_cycles({"a": {"a"}}) == [["a"]]
    assert find_cycles({"a": {"b", "c"}, "b": {"c"}, "c": set()}) == []
    # a long chain must not hit the recursion limit
    chain = {str(i): {str(i + 1)} for i in range(5000)}
    assert find_cycles(chain) == []
    chain["5000"] = {"0"}
    assert len(find_cycles(chain)[0]) == 5001


def test_upward_imports_catches_a_lower_layer_importing_a_higher_one():
    up = Import("foolkit.models.registry", "foolkit.evaluation.store", 7, True)
    lazy_up = Import("foolkit.norms", "foolkit.attacks.base", 9, False)
    down = Import("foolkit.evaluation.store", "foolkit.models.registry", 3, True)
    same = Import("foolkit.analysis.lipschitz", "foolkit.defenses.quantization", 4, True)
    problems = upward_imports([up, lazy_up, down, same])
    assert len(problems) == 2
    assert problems[0].startswith("foolkit/models/registry.py:7: foolkit.models.registry (layer 3)")
    assert "foolkit/norms.py:9" in problems[1]
    # the allowance covers the lazy isinstance import only, not a module-level one
    lazy = Import("foolkit.attacks.fgsm", "foolkit.models.wrappers", 5, False)
    eager = Import("foolkit.attacks.fgsm", "foolkit.models.wrappers", 5, True)
    assert upward_imports([lazy, eager]) == []  # attacks (4) -> models (3) is downward
    fake_layers = [("foolkit.attacks",), ("foolkit.models",)]  # an order where it points up
    allowance = {("foolkit.attacks", "foolkit.models.wrappers"): "isinstance check"}
    assert upward_imports([lazy], fake_layers, allowance) == []
    assert len(upward_imports([eager], fake_layers, allowance)) == 1
    assert len(upward_imports([lazy], fake_layers, allowed={})) == 1


def test_layer_of_needs_every_module_placed():
    assert layer_of("foolkit.runtime.files") == 1
    assert layer_of("foolkit") == len(LAYERS) - 1
    with pytest.raises(AssertionError, match="foolkit.plugins is in no layer"):
        layer_of("foolkit.plugins")


def test_oversized_catches_a_long_module():
    assert oversized({"foolkit.a": 400, "foolkit.b": 401}) == ["foolkit.b: 401 lines (limit 400)"]


def test_exception_check_catches_a_stray_exception():
    source = """
class FoolkitError(ValueError): ...
class InputError(FoolkitError): ...
class Deep(InputError): ...
class OutOfMemory(torch.cuda.OutOfMemoryError, FoolkitError): ...
class Stray(RuntimeError): ...
class Remote(sqlite3.Error): ...
class Indirect(Stray): ...
class Careful(UserWarning): ...
class Plain: ...
"""
    problems = exceptions_outside_foolkit_error(class_defs("foolkit.fake", source))
    assert [p.split(": ")[1].split("(")[0] for p in problems] == ["Stray", "Remote", "Indirect"]
    assert problems[0].startswith("foolkit/fake.py:6: ")
