"""The import structure: `planners` never imports `hjepa`, `hjepa` never imports `benchmarks`,
no import cycle inside `hjepa` (function-local imports included, so none can dodge one), and
every module imports only modules of its own layer or the layers below it (DESIGN.md):

    1  planners
    2  configs, io, distributed, modules: frozen configs, files and run records, meshes,
       Flax modules
    3  tasks, data
    4  the world-model families (model, hierarchy, latent_variable) behind one interface
       (world_model), losses, costs, the critic
    5  training, evaluation
    6  pipeline (the demo)
    7  cli

Read from the source with `ast`, so it needs nothing imported.
"""

from __future__ import annotations

import ast
import os

import pytest
from cli_helpers import REPO_ROOT

ROOT = REPO_ROOT

# Every module of hjepa and its layer; a module missing here fails the test, so a new file
# gets a place in the layers when it is added.
LAYERS = {
    "hjepa.configs": 2, "hjepa.checks": 2, "hjepa.io": 2, "hjepa.checkpoint": 2,
    "hjepa.ownership": 2,
    "hjepa.distributed": 2, "hjepa.modules": 2, "hjepa.sysinfo": 2, "hjepa.splits": 2,
    "hjepa.stats": 2, "hjepa.provenance": 2, "hjepa.pretrained": 2,
    "hjepa.tasks": 3, "hjepa.tasks.base": 3, "hjepa.tasks._brax": 3, "hjepa.tasks.render": 3,
    "hjepa.tasks.reacher": 3, "hjepa.tasks.point_maze": 3, "hjepa.tasks.pusher": 3,
    "hjepa.tasks.push_t": 3, "hjepa.tasks.trajectory_goals": 3,
    "hjepa.tasks.ant_maze": 3, "hjepa.tasks.windy": 3, "hjepa.tasks.policies": 3,
    "hjepa.data": 3,
    "hjepa.losses": 4, "hjepa.model": 4, "hjepa.cost": 4, "hjepa.critic": 4,
    "hjepa.hierarchy": 4, "hjepa.latent_variable": 4, "hjepa.policy": 4, "hjepa.goal_space": 4,
    "hjepa.skills": 4,
    "hjepa.world_model": 4,
    "hjepa.train": 5, "hjepa.evaluate": 5, "hjepa.distill": 5, "hjepa.visualize": 5,
    "hjepa.inspection": 5,
    "hjepa.demo": 6, "hjepa.pipeline": 6,
    "hjepa.cli": 7, "hjepa.__main__": 7, "hjepa": 7,
}


def module_files(package: str) -> dict[str, str]:
    """{module name: path} of every .py file under ROOT/package."""
    found = {}
    for directory, _, files in os.walk(os.path.join(ROOT, package)):
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(directory, name)
                parts = os.path.relpath(path, ROOT)[:-3].split(os.sep)
                if parts[-1] == "__init__":
                    parts = parts[:-1]
                found[".".join(parts)] = path
    return found


def imported_modules(path: str, known: set[str]) -> set[str]:
    """Modules imported anywhere in the file (function-local imports included), as the most
    specific known module name (`from hjepa import data` -> hjepa.data)."""
    with open(path) as f:
        tree = ast.parse(f.read())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                names.add(full if full in known else node.module)
    return names


def graph() -> dict[str, set[str]]:
    files = module_files("hjepa")
    known = set(files)
    return {name: {m for m in imported_modules(path, known)
                   if m == "hjepa" or m.startswith("hjepa.")} - {name}
            for name, path in files.items()}


def test_every_module_has_a_layer():
    assert sorted(set(module_files("hjepa")) - set(LAYERS)) == []


def test_imports_go_down_the_layers():
    wrong = []
    for module, imports in graph().items():
        for target in imports:
            if LAYERS.get(target, 99) > LAYERS[module]:
                wrong.append(f"{module} (layer {LAYERS[module]}) imports {target} "
                             f"(layer {LAYERS.get(target)})")
    assert wrong == []


def test_no_import_cycle():
    edges = {m: {t for t in ts if t != "hjepa"} for m, ts in graph().items()}
    state: dict[str, int] = {}
    cycles = []

    def visit(node, path):
        state[node] = 1
        for target in sorted(edges.get(node, ())):
            if state.get(target) == 1:
                cycles.append(" -> ".join([*path[path.index(target):], target]))
            elif state.get(target) is None:
                visit(target, [*path, target])
        state[node] = 2

    for node in sorted(edges):
        if state.get(node) is None:
            visit(node, [node])
    assert cycles == []


@pytest.mark.parametrize("package, forbidden", [("planners", ("hjepa", "benchmarks")),
                                                ("hjepa", ("benchmarks",))])
def test_a_package_never_imports_the_ones_above_it(package, forbidden):
    files = module_files(package)
    wrong = sorted(f"{module} imports {name}" for module, path in files.items()
                   for name in imported_modules(path, set(files))
                   if name.split(".")[0] in forbidden)
    assert wrong == []
