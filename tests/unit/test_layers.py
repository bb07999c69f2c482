"""The package's shape: layers only import downward, functions stay short, ``import nmt`` is light."""
import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[2] / "nmt"

# cli -> api -> train, deploy.export -> translator -> checkpoint, backends -> search, deploy.runtime -> models
#   -> data, eval, plots, precision -> config, errors, outputs, resources, runpaths, launch, deploy.bundle
RANKS = [("nmt.deploy.bundle", 0), ("nmt.deploy.runtime", 3), ("nmt.backends", 4), ("nmt.deploy.export", 6),
         ("nmt.errors", 0), ("nmt.config", 0), ("nmt.outputs", 0), ("nmt.resources", 0), ("nmt.runpaths", 0), ("nmt.launch", 0), ("nmt.data", 1), ("nmt.eval", 1), ("nmt.plots", 1),
         ("nmt.precision", 1), ("nmt.runtime", 1), ("nmt.models", 2), ("nmt.search", 3), ("nmt.checkpoint", 4), ("nmt.translator", 5), ("nmt.guides", 5),
         ("nmt.training", 6), ("nmt.api", 7), ("nmt.serve", 8), ("nmt.cli", 9), ("nmt.configs", 0)]


def rank(module: str) -> int:
    for prefix, r in RANKS:
        if module == prefix or module.startswith(prefix + "."):
            return r
    return 9  # the package itself


def modules():
    for path in sorted(PKG.rglob("*.py")):
        parts = path.relative_to(PKG.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        yield name, path, ast.parse(path.read_text())


def imported(name: str, path: Path, tree) -> set:
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
                out.update([target] if node.module else [f"{target}.{a.name}" for a in node.names])
            elif node.module and node.module.startswith("nmt"):
                out.add(node.module)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.startswith("nmt"))
    return out


def test_no_import_runs_up_the_layers():
    bad = []
    for name, path, tree in modules():
        for target in imported(name, path, tree):
            if rank(target) > rank(name):
                bad.append(f"{name} imports {target}")
    assert not bad, bad


MAX_FUNCTION_LINES, MAX_MODULE_LINES = 60, 350


def test_no_function_over_60_lines_and_no_module_over_350():
    long = [f"{name}.{node.name}: {node.end_lineno - node.lineno + 1} lines"
            for name, _, tree in modules() for node in ast.walk(tree)
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES]
    sizes = {name: len(path.read_text().splitlines()) for name, path, _ in modules()}
    long += [f"{name}: {n} lines" for name, n in sizes.items() if n > MAX_MODULE_LINES]
    assert not long, long


def test_every_package_is_listed_for_a_regular_install():
    """pyproject.toml names its packages one by one (configs/ is installed as nmt.configs); a package
    left out is missing from a regular install (some setuptools versions still copy it, others do not)."""
    import tomllib
    listed = set(tomllib.loads((PKG.parent / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    packages = {".".join(p.parent.relative_to(PKG.parent).parts) for p in PKG.rglob("__init__.py")}
    assert packages <= listed, sorted(packages - listed)
