"""Runs *inside* the grading kernel: keep the real grading code in charge of the test cells.

The grader executes two hidden snippets that never appear in the notebook:

- :func:`bootstrap_source`, once, before the student's first cell: it imports the real
  ``autograder``, ``autograder.checks`` and ``solutions`` (with the notebook's folder taken off
  ``sys.path``, so a student's ``autograder.py`` cannot stand in for them) and records the state
  a test cell relies on;
- :func:`guard_source`, before every graded test cell: it puts back whatever the student's code
  changed in that state (``sys.modules`` entries and attributes of the grading modules,
  builtins, IPython's traceback display, custom exception handlers, input and AST
  transformers, event callbacks, trace and profile hooks) and prints a one-time nonce followed
  by the list of what it had to restore.

The grader checks that nonce. A kernel whose cells no longer run as written (for example a
student input transformer that turns every cell into ``pass``) cannot print it, and the test cell
that follows is failed with a reason. This is a guard against accidents and naive tampering, not
a security boundary: code in the same process can always undo what runs beside it. See
``autograder/README.md``.
"""

from __future__ import annotations

import builtins
import json
import sys
import types
from typing import Any

PROTECTED = ("autograder", "solutions", "course")
_MISSING = object()
#: Imported before the student's code when the grader does not say otherwise.
DEFAULT_PRELOAD = ("autograder", "autograder.checks", "autograder.kernel_guard", "solutions")
_SHELL_METHODS = (
    "showtraceback",
    "_showtraceback",
    "showsyntaxerror",
    "run_cell",
    "run_cell_async",
    "run_ast_nodes",
    "run_code",
    "transform_cell",
)

#: Executed once before the first cell. Self-contained: it must not rely on anything the
#: notebook's folder could shadow.
_BOOTSTRAP = """\
import sys as _ag_sys, os as _ag_os
_ag_path = list(_ag_sys.path)
_ag_sys.path[:] = [p for p in _ag_path if p not in ("", ".", _ag_os.getcwd())]
try:
    import autograder.kernel_guard as _ag_kg
    _ag_kg.install(get_ipython(), {preload!r})
finally:
    _ag_sys.path[:] = _ag_path
    del _ag_sys, _ag_os, _ag_path
del _ag_kg
"""


def bootstrap_source(preload: tuple[str, ...] | list[str] = DEFAULT_PRELOAD) -> str:
    """Source of the snippet run before the first cell; it imports ``preload`` for real."""
    return _BOOTSTRAP.format(preload=tuple(preload))


#: Builtins ipykernel itself swaps on every request (stdin forwarding).
_KERNEL_OWNED_BUILTINS = ("input", "raw_input", "getpass")

_STATE: dict[str, Any] = {}


def _is_protected(name: str) -> bool:
    return name.split(".", 1)[0] in PROTECTED


def install(shell: Any, preload: tuple[str, ...] = DEFAULT_PRELOAD) -> None:
    """Import the real grading modules and record the state test cells rely on."""
    import importlib

    missing = []
    for name in ("autograder", "autograder.kernel_guard", *preload):
        try:
            importlib.import_module(name)
        except ImportError:
            # A grading environment without `solutions` still grades checks that do not use it.
            missing.append(name)
    modules = {n: m for n, m in sys.modules.items() if _is_protected(n) and m is not None}
    _STATE.clear()
    _STATE.update(
        missing=missing,
        modules=modules,
        module_dicts={n: dict(vars(m)) for n, m in modules.items()},
        builtins=dict(vars(builtins)),
        sys_hooks={"stdout": sys.stdout, "stderr": sys.stderr},
        shell_class={k: type(shell).__dict__.get(k) for k in _SHELL_METHODS},
        shell_instance={k: vars(shell).get(k, _MISSING) for k in _SHELL_METHODS},
        custom_exceptions=shell.custom_exceptions,
    )


def restore(shell: Any) -> list[str]:
    """Undo changes to the recorded state; return a description of each one undone."""
    if not _STATE:
        return ["grading state was never recorded (bootstrap did not run)"]
    fixed: list[str] = []
    for name in list(sys.modules):
        if _is_protected(name) and name not in _STATE["modules"]:
            module = sys.modules[name]
            if not getattr(module, "__file__", "") or _is_foreign(module):
                del sys.modules[name]
                fixed.append(f"sys.modules[{name!r}] (inserted)")
    for name, module in _STATE["modules"].items():
        if sys.modules.get(name) is not module:
            sys.modules[name] = module
            fixed.append(f"sys.modules[{name!r}]")
        namespace = vars(module)
        for key, value in _STATE["module_dicts"][name].items():
            # Only code is put back: data globals (caches filled lazily by the checks
            # themselves) may change legitimately.
            if _is_code(value) and namespace.get(key, _MISSING) is not value:
                namespace[key] = value
                fixed.append(f"{name}.{key}")
    namespace = vars(builtins)
    for key, value in _STATE["builtins"].items():
        if key in _KERNEL_OWNED_BUILTINS:
            continue
        if _is_code(value) and namespace.get(key, _MISSING) is not value:
            namespace[key] = value
            fixed.append(f"builtins.{key}")
    for key, value in _STATE["sys_hooks"].items():
        if getattr(sys, key) is not value:
            setattr(sys, key, value)
            fixed.append(f"sys.{key}")
    if sys.gettrace() is not None:
        sys.settrace(None)
        fixed.append("sys.settrace")
    if sys.getprofile() is not None:
        sys.setprofile(None)
        fixed.append("sys.setprofile")
    for key in _SHELL_METHODS:
        before = _STATE["shell_instance"][key]
        if vars(shell).get(key, _MISSING) is not before:
            if before is _MISSING:
                delattr(shell, key)
            else:
                setattr(shell, key, before)
            fixed.append(f"shell.{key}")
        original = _STATE["shell_class"][key]
        if type(shell).__dict__.get(key) is not original and original is not None:
            setattr(type(shell), key, original)
            fixed.append(f"{type(shell).__name__}.{key}")
    manager = shell.input_transformer_manager
    fixed += _drop_student_hooks(shell.input_transformers_post, "input transformer")
    fixed += _drop_student_hooks(manager.cleanup_transforms, "cleanup transform")
    fixed += _drop_student_hooks(manager.line_transforms, "line transform")
    fixed += _drop_student_hooks(shell.ast_transformers, "AST transformer")
    for event, callbacks in shell.events.callbacks.items():
        fixed += _drop_student_hooks(callbacks, f"{event} callback")
    if shell.custom_exceptions != _STATE["custom_exceptions"]:
        shell.set_custom_exc((), None)
        fixed.append("custom exception handler (set_custom_exc)")
    return fixed


def _is_code(value: Any) -> bool:
    return callable(value) or isinstance(value, types.ModuleType)


def _from_notebook(hook: Any) -> bool:
    """True for a hook defined in the notebook itself (libraries such as matplotlib add their
    own, legitimately, so those stay)."""
    target = getattr(hook, "__func__", hook)
    if not callable(target):
        return False
    if getattr(target, "__module__", None) == "__main__":
        return True
    if not isinstance(target, types.FunctionType):
        target = type(target)
    return getattr(target, "__module__", None) == "__main__"


def _drop_student_hooks(hooks: list[Any], label: str) -> list[str]:
    kept = [h for h in hooks if not _from_notebook(h)]
    if len(kept) == len(hooks):
        return []
    removed = len(hooks) - len(kept)
    hooks[:] = kept
    return [f"{label} from the notebook" + (f" (x{removed})" if removed > 1 else "")]


def _is_foreign(module: Any) -> bool:
    """True when a protected-looking module does not live beside the real package."""
    root = _STATE["modules"].get(module.__name__.split(".", 1)[0])
    if root is None or not getattr(root, "__path__", None):
        return True
    return not any(str(module.__file__).startswith(p) for p in root.__path__)


def guard_source(nonce: str) -> str:
    """Source of the snippet run before each graded test cell; prints ``nonce`` + JSON list."""
    return (
        "import autograder.kernel_guard as _ag_kg\n"
        f"print({nonce!r} + _ag_kg.report(get_ipython()))\n"
        "del _ag_kg\n"
    )


def report(shell: Any) -> str:
    """Restore the recorded state and return what was restored, as JSON."""
    return json.dumps(restore(shell))
