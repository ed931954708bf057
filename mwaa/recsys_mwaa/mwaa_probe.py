"""Load a package as MWAA does, inside the MWAA-exact environment; print one JSON report.

Run by validation.mwaa_report as ``<.venv-mwaa>/bin/python mwaa_probe.py PLUGINS DAGS LOCAL_ENGINE``
with AIRFLOW_HOME, the plugins and dags folders set. It imports nothing of recsys_mwaa: it
must see only what that environment holds.

1. Airflow's plugins manager, as every MWAA component runs it: import errors, modules it
   registered under bare top-level names, the plugins and their operator extra links.
2. The DagBag, as the DAG processor runs it: import errors and DAG ids.
3. Task time: every module of the plugin packages imported, as a worker would (modules of
   ``engine`` packages excepted: they run only on the local backend, with local-engine.txt).
4. Imports anywhere in the code, even inside functions (run only at task time), of a
   module this environment cannot find, named with file and line. A package's ``engine``
   modules may also import what the LOCAL_ENGINE folder holds (local-engine.txt's packages).
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import json
import pkgutil
import sys
import time
import traceback
from importlib.machinery import PathFinder
from pathlib import Path


def _short(error: BaseException | str) -> str:
    text = error if isinstance(error, str) else "".join(traceback.format_exception_only(error))
    return text.strip().splitlines()[-1][:300] if text.strip() else repr(error)


def plugins_report(plugins: Path) -> dict:
    main = sys.modules["__main__"]
    import airflow.plugins_manager as pm

    pm.ensure_plugins_loaded()
    failed = {str(path) for path in pm.get_import_errors()}  # reported as import errors instead
    bare = sorted(
        name
        for name, module in list(sys.modules.items())
        if "." not in name
        and (getattr(module, "__file__", None) or "").startswith(str(plugins) + "/")
        and not (plugins / name / "__init__.py").exists()  # a package imported by name is fine
        and module.__file__ not in failed
        and name not in {p.__module__.split(".")[0] for p in pm._get_plugins()[0]}
    )
    links = sorted(
        f"{type(link).__module__}.{type(link).__name__}"
        for link in pm.get_operator_extra_links()
        if not type(link).__module__.startswith("airflow")
    )
    return {
        "plugin_errors": {str(k): _short(str(v)) for k, v in pm.get_import_errors().items()},
        "bare_modules": bare,
        "plugins": sorted(p.name for p in pm._get_plugins()[0]),
        "links": links,
        "main_replaced": sys.modules["__main__"] is not main,
    }


def dagbag_report(dags: Path) -> dict:
    from airflow.models import DagBag

    start = time.perf_counter()
    bag = DagBag(dag_folder=str(dags))
    return {
        "dag_errors": {k: _short(str(v)) for k, v in bag.import_errors.items()},
        "dags": sorted(bag.dags),
        "seconds": time.perf_counter() - start,
    }


def _packages(plugins: Path) -> list[Path]:
    return sorted(p.parent for p in plugins.glob("*/__init__.py"))


def task_time_report(plugins: Path) -> dict:
    errors = {}
    for package in _packages(plugins):
        for info in pkgutil.walk_packages([str(package)], prefix=f"{package.name}."):
            if ".engine" in info.name or info.name.endswith(".__main__"):
                continue
            try:
                importlib.import_module(info.name)
            except Exception as error:  # any failure is the report's content
                errors[info.name] = _short(error)
    return {"module_errors": errors}


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_bytes(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name.split(".")[0]) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module.split(".")[0]))
    return found


def unlisted_imports_report(roots: list[Path], local_engine: str) -> dict:
    unlisted = []
    known: dict[str, bool] = {}
    for root in roots:
        for path in sorted(root.rglob("*.py")):
            in_engine = "engine" in path.relative_to(root).parts[:-1]
            for line, name in _imports(path):
                if name not in known:
                    known[name] = importlib.util.find_spec(name) is not None
                engine_has = bool(local_engine) and PathFinder.find_spec(name, [local_engine]) is not None
                if not known[name] and not (in_engine and engine_has):
                    unlisted.append(f"{path.relative_to(root.parent)}:{line}: imports {name!r}")
    return {"unlisted_imports": unlisted}


def main() -> None:
    plugins, dags, local_engine = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
    report = plugins_report(plugins) | dagbag_report(dags) | task_time_report(plugins)
    report |= unlisted_imports_report([plugins, dags], local_engine)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
