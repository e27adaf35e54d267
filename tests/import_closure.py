"""Which repository Python files each dvc.yaml stage executes, found with `ast`, checked against its deps.

A stage's command is `python -m stages.<module> <function> [args...]`. Its closure is:

- the entry module `stages/<module>.py`, read at *function* level: its module-level imports, the imports
  inside the top-level function `<function>`, and those inside every other top-level function or class
  that function reaches by name (transitively, also through module-level assignments such as dispatch
  tables); `if __name__ == "__main__":` blocks are ignored;
- every other repository module reached, read at *module* level: every import statement in the file;
- every `reports/*.py` dep (papermill runs it), read at module level;
- the `__init__.py` of every package on the way (`import a.b.c` runs `a/__init__.py`, `a/b/__init__.py`).

Only files under the repository root count; third-party imports are ignored. No code is imported.
"""
from __future__ import annotations

import ast
import os
import posixpath
import shlex
from functools import cache
from pathlib import Path

# MLflow tracking only records a run; it changes no result, so a stage may leave it out of its deps
# (and listing it anyway is not an error either).
RECORDS_ONLY = frozenset({"pipeline/tracking.py"})
# Top-level folders whose non-`.py` (folder) deps are code deps, so an unused one is reported as extra.
CODE_FOLDERS = ("pipeline", "stages")


class ClosureError(ValueError):
    """A stage command the analyzer cannot follow (not `python -m stages.<module> <function>`, ...)."""


def expanded_stages(root: Path) -> dict[str, tuple[str, list[str]]]:
    """Every expanded pipeline stage of `root/dvc.yaml` (DVC's own parser: foreach/matrix expanded)
    -> (cmd, its path deps as written, relative to root; params deps left out). Keys are stage names such
    as `train@literal` (`stage.name`: unlike `stage.addressing`, not relative to the working directory)."""
    from dvc.dependency.param import ParamsDependency
    from dvc.repo import Repo
    from dvc.stage import PipelineStage

    dvc_yaml = os.path.realpath(root / "dvc.yaml")
    with Repo(str(root)) as repo:
        return {stage.name: (stage.cmd if isinstance(stage.cmd, str) else " && ".join(stage.cmd),
                                   [dep.def_path for dep in stage.deps if not isinstance(dep, ParamsDependency)])
                for stage in repo.index.stages
                if isinstance(stage, PipelineStage) and os.path.realpath(stage.path) == dvc_yaml}


def _norm(path: str) -> str:
    return posixpath.normpath(path.strip().removeprefix("./"))


def covers(dep: str, file: str) -> bool:
    """A dep covers a file when it is that file or a folder holding it."""
    dep = _norm(dep)
    return file == dep or file.startswith(dep + "/")


def needs_dep(root: Path, file: str) -> bool:
    """False for files that cannot change a result: RECORDS_ONLY, and an `__init__.py` whose body is
    empty or only a docstring."""
    if file in RECORDS_ONLY:
        return False
    return posixpath.basename(file) != "__init__.py" or not _trivial(*_version(root, file))


def _version(root: Path, file: str) -> tuple[str, tuple[int, int]]:
    """A file's path and stamp (mtime, size): the key of the per-file caches below."""
    st = (root / file).stat()
    return str(root / file), (st.st_mtime_ns, st.st_size)


def _read(path: str) -> ast.Module:
    return ast.parse(Path(path).read_text(), filename=path)


@cache
def _trivial(path: str, stamp: tuple[int, int]) -> bool:
    """The module's body is empty or only a docstring."""
    body = _read(path).body
    return not body or (len(body) == 1 and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
                        and isinstance(body[0].value.value, str))


def _package_of(file: str) -> str:
    """The package a repo-relative module file belongs to (what `.` means in its relative imports)."""
    return ".".join(file.removesuffix(".py").split("/")[:-1])


def _targets(node: ast.Import | ast.ImportFrom, file: str) -> list[str]:
    """The dotted names one import statement in `file` may load as modules: `from a.b import c` may load
    `a.b` and, when `c` is a submodule, `a.b.c`; relative imports are made absolute."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = node.module or ""
    if node.level:
        package = _package_of(file).split(".")
        package = package[:len(package) - node.level + 1]
        base = ".".join(p for p in [*package, *base.split(".")] if p)
    names = [f"{base}.{alias.name}" if base else alias.name for alias in node.names if alias.name != "*"]
    return [base] * bool(base) + names


def _import_targets(nodes: list[ast.AST], file: str) -> tuple[str, ...]:
    """The targets of every import statement anywhere inside `nodes`."""
    return tuple(target for top in nodes for node in ast.walk(top) if isinstance(node, (ast.Import, ast.ImportFrom))
                 for target in _targets(node, file))


@cache
def _module_targets(path: str, stamp: tuple[int, int], file: str) -> tuple[str, ...]:
    """Module level: the targets of every import statement in the file."""
    return _import_targets([_read(path)], file)


def _is_main_block(node: ast.stmt) -> bool:
    """`if __name__ == "__main__":` at module level."""
    test = node.test if isinstance(node, ast.If) else None
    return (isinstance(test, ast.Compare) and isinstance(test.left, ast.Name) and test.left.id == "__name__"
            and len(test.comparators) == 1 and isinstance(test.comparators[0], ast.Constant)
            and test.comparators[0].value == "__main__")


def _local_names(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> set[str]:
    """Names local to `fn` (its parameters, and what its own body binds): in Python such a name
    means the local everywhere in the function, never a module-level definition of that name.
    Nested functions, lambdas, classes and comprehensions are scopes of their own: not looked into."""
    a = fn.args
    names = {x.arg for x in (*a.posonlyargs, *a.args, *a.kwonlyargs, a.vararg, a.kwarg) if x is not None}
    declared_global: set[str] = set()
    stack = list(fn.body)
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
            continue
        if isinstance(node, (ast.Lambda, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
            continue
        if isinstance(node, (ast.Global, ast.Nonlocal)):
            declared_global.update(node.names)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            names.add(node.id)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
        stack.extend(ast.iter_child_nodes(node))
    return names - declared_global


@cache
def _function_targets(path: str, stamp: tuple[int, int], file: str, function: str) -> tuple[str, ...] | None:
    """Function level: the targets of the module-level imports plus those inside every top-level definition
    `function` reaches by name (directly, or through a module-level assignment such as a dispatch table);
    None when the module has no top-level function `function`."""
    defs: dict[str, ast.AST] = {}         # top-level def/class, or the module-level assignment of a name
    plain: list[ast.AST] = []             # module-level code outside any def, class or __main__ block
    for node in _read(path).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            defs[node.name] = node
        elif not _is_main_block(node):
            plain.append(node)
            for target in node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]:
                for name in ast.walk(target) if target is not None else ():
                    if isinstance(name, ast.Name):
                        defs.setdefault(name.id, node)
    if not isinstance(defs.get(function), (ast.FunctionDef, ast.AsyncFunctionDef)):
        return None
    reached, todo = {function}, [function]
    while todo:
        node = defs[todo.pop()]
        local = _local_names(node) if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) else set()
        for name in ast.walk(node):
            if isinstance(name, ast.Name) and name.id in defs and name.id not in reached and name.id not in local:
                reached.add(name.id)
                todo.append(name.id)
    kinds = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
    return _import_targets(plain + [defs[name] for name in reached if isinstance(defs[name], kinds)], file)


def _module_file(root: Path, module: str) -> str | None:
    """`a.b.c` -> `a/b/c.py` or `a/b/c/__init__.py` (repo-relative) when it exists under root."""
    base = module.replace(".", "/")
    for rel in (f"{base}.py", f"{base}/__init__.py"):
        if os.path.isfile(f"{root}/{rel}"):
            return rel
    return None


def _resolve(root: Path, targets: tuple[str, ...], memo: dict[str, str | None]) -> set[str]:
    """The repository files importing each target executes: each package's `__init__.py` on the way, then
    the module itself. A target that is no file under root (third party, or a plain name) adds nothing.
    `memo` caches module -> file for one closure."""
    files = set()
    for target in set(targets):
        parts = target.split(".")
        for i in range(1, len(parts) + 1):
            module = ".".join(parts[:i])
            if module not in memo:        # "" for a namespace package: a folder without __init__.py
                memo[module] = _module_file(root, module) or (
                    "" if os.path.isdir(f"{root}/{module.replace('.', '/')}") else None)
            if memo[module] is None:
                break                     # neither module nor folder: nothing deeper is a module either
            if memo[module]:
                files.add(memo[module])
    return files


def _entry(cmd: str) -> tuple[str, str]:
    """`python -m stages.x fn args...` -> (`stages.x`, `fn`)."""
    words = shlex.split(cmd)
    if len(words) < 4 or posixpath.basename(words[0]) not in ("python", "python3") or words[1] != "-m" \
            or not words[2].startswith("stages."):
        raise ClosureError(f"`{cmd}`: not of the form `python -m stages.<module> <function> [args...]`")
    return words[2], words[3]


def stage_closure(root: Path, cmd: str, deps: list[str]) -> set[str]:
    """Repo-relative paths of every Python file the stage's command and its report deps can execute."""
    module, function = _entry(cmd)
    entry = _module_file(root, module)
    if entry is None:
        raise ClosureError(f"`{cmd}`: no module {module} under {root}")
    selected = _function_targets(*_version(root, entry), entry, function)
    if selected is None:
        raise ClosureError(f"`{cmd}`: {entry} has no top-level function {function!r}")
    memo: dict[str, str | None] = {}
    todo = _resolve(root, (module,), memo) - {entry} | _resolve(root, selected, memo)  # `-m` runs packages first
    todo |= {_norm(d) for d in deps if _norm(d).startswith("reports/") and _norm(d).endswith(".py")}
    done: set[str] = set()
    while todo:
        file = todo.pop()
        done.add(file)
        todo |= _resolve(root, _module_targets(*_version(root, file), file), memo) - done
    return done | {entry}


def check_stage(root: Path, name: str, cmd: str, deps: list[str]) -> list[str]:
    """One line per problem: a closure file no dep covers (missing), a code dep covering no closure file
    (extra), or a command the analyzer cannot follow."""
    try:
        closure = stage_closure(root, cmd, deps)
    except (ClosureError, OSError, SyntaxError) as exc:
        return [f"{name}: {exc}"]
    problems = [f"{name}: imports {file} but no dep covers it (add it to the stage's deps in dvc.yaml)"
                for file in sorted(closure) if needs_dep(root, file) and not any(covers(d, file) for d in deps)]
    for dep in deps:
        path = _norm(dep)
        code = path.endswith(".py") or (path.split("/")[0] in CODE_FOLDERS
                                        and ((root / path).is_dir() or not posixpath.splitext(path)[1]))
        if code and path not in RECORDS_ONLY and not any(covers(path, file) for file in closure):
            problems.append(f"{name}: lists {dep} but does not import it (remove it from the stage's deps)")
    return problems


def stale_for_edit(root: Path, edited: str) -> set[str]:
    """Names of the expanded stages whose deps cover `edited` (repo-relative): what DVC reruns after it."""
    edited = _norm(edited)
    return {name for name, (_, deps) in expanded_stages(root).items() if any(covers(d, edited) for d in deps)}
