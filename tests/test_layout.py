"""The layout holds: the core imports nothing of the package outside itself, the subpackages import
one another without a cycle, and an import inside a function says why it is there."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import anonymizer

PACKAGE = Path(anonymizer.__file__).parent
SUBPACKAGES = ("core", "io", "package", "verify", "tools", "tables")
# What the core may use beyond the standard library: parsing, validation and matching libraries.
CORE_LIBRARIES = {"orjson", "pydantic", "yaml", "phonenumbers", "ahocorasick", "ahocorasick_rs", "ua_parser", "ua_parser_builtins",
                  "cryptography", "maxminddb",  # key derivation (HKDF); the reader of a country database
                  "anonymizer_native"}  # the optional native engine (native/)
# What the core must not touch even from the standard library: compression, processes, the CLI.
NOT_IN_CORE = {"gzip", "zlib", "isal", "multiprocessing", "subprocess", "concurrent", "signal", "typer", "click"}


def modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def imports(name: str, path: Path) -> list[tuple[str, ast.stmt]]:
    """(absolute module name, statement) for every import in the module NAME."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((alias.name, node) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            found.append((source, node))
            found.extend((f"{source}.{alias.name}", node) for alias in node.names if f"{source}.{alias.name}" in MODULES)
    return found


MODULES = modules()


def test_the_core_imports_only_itself_the_standard_library_and_its_libraries():
    assert any(name.startswith("anonymizer.core.") for name in MODULES)
    problems = []
    for name, path in MODULES.items():
        if not (name == "anonymizer.core" or name.startswith("anonymizer.core.")):
            continue
        for imported, node in imports(name, path):
            top = imported.split(".")[0]
            if top == "anonymizer":
                ok = imported == "anonymizer.core" or imported.startswith("anonymizer.core.")
            else:
                ok = (top in sys.stdlib_module_names or top in CORE_LIBRARIES or top == "__future__") and top not in NOT_IN_CORE
            if not ok:
                problems.append(f"{name}:{node.lineno} imports {imported}")
    assert problems == []


def _unit(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "anonymizer" and parts[1] in SUBPACKAGES else None


def test_the_subpackages_import_one_another_without_a_cycle():
    edges: dict[str, set[str]] = {unit: set() for unit in SUBPACKAGES}
    for name, path in MODULES.items():
        source = _unit(name)
        if source is None:
            continue
        for imported, _ in imports(name, path):
            target = _unit(imported)
            if target is not None and target != source:
                edges[source].add(target)
    assert "io" not in edges["core"] and edges["io"] >= {"core"}

    def cycle_from(unit: str, trail: list[str]) -> list[str] | None:
        if unit in trail:
            return trail[trail.index(unit):] + [unit]
        for following in sorted(edges[unit]):
            found = cycle_from(following, trail + [unit])
            if found:
                return found
        return None

    assert [cycle for unit in SUBPACKAGES if (cycle := cycle_from(unit, []))] == []


def test_an_import_inside_a_function_says_why():
    unexplained = []
    for name, path in MODULES.items():
        lines = path.read_text(encoding="utf-8").splitlines()
        tree = ast.parse("\n".join(lines))
        for function in ast.walk(tree):
            if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(function):
                if isinstance(node, (ast.Import, ast.ImportFrom)):
                    here, above = lines[node.lineno - 1], lines[node.lineno - 2]
                    if "#" not in here and not above.strip().startswith("#") and "#" not in above:
                        unexplained.append(f"{name}:{node.lineno}")
    assert unexplained == []
