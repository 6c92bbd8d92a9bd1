"""The child side of the Python checks: import targets and try their signatures.

Run as `python -m runner.probe` by `runner.inspection`, never in mprun's own process: user
code runs on import and may raise, hang, print or crash. Reads one JSON request on stdin and
answers one JSON line per target on the file descriptor that was stdout (the user's prints go
to stderr instead). Standard library only: it starts once per checked file.
"""

from __future__ import annotations

import difflib
import inspect
import json
import os
import re
import sys
import threading
import time
from typing import Any, TextIO

from runner.target import split


def _describe(error: BaseException) -> str:
    try:
        said = str(error)
    except BaseException:  # noqa: BLE001 - a user exception whose __str__ raises
        said = ""
    text = f"{type(error).__name__}: {said}" if said else type(error).__name__
    frames = [frame for frame in _frames(error) if "importlib" not in frame[0]]
    if frames:
        filename, line = frames[-1]
        text += f" ({os.path.basename(filename)}:{line})"
    return text


def _frames(error: BaseException) -> list[tuple[str, int]]:
    found = []
    trace = error.__traceback__
    while trace is not None:
        found.append((trace.tb_frame.f_code.co_filename, trace.tb_lineno))
        trace = trace.tb_next
    return found[1:]  # the first frame is ours


def _missing(module: str, error: ModuleNotFoundError) -> bool:
    """Whether the module itself is missing (rather than something it imports)."""
    return error.name is not None and (module == error.name or module.startswith(error.name + "."))


def _running() -> tuple[set[int], set[int]]:
    """The threads of this process and the processes it started (Linux's /proc; empty sets
    where there is none)."""
    threads: set[int] = set()
    children: set[int] = set()
    try:
        for task in os.listdir("/proc/self/task"):
            threads.add(int(task))
            with open(f"/proc/self/task/{task}/children", encoding="ascii") as found:
                children.update(int(pid) for pid in found.read().split())
    except OSError:
        pass
    return threads, children


def _side_effects(module_name: str, before: tuple[set[int], set[int]]) -> dict[str, str] | None:
    """A module whose import started threads or processes: a script without an
    `if __name__ == "__main__":` guard, which would run again in mprun's own process."""
    threads, children = (now - then for now, then in zip(_running(), before, strict=True))
    if not threads and not children:
        return None
    started = []
    if children:
        started.append(f"{len(children)} process" + ("es" if len(children) != 1 else ""))
    if threads:
        started.append(f"{len(threads)} thread" + ("s" if len(threads) != 1 else ""))
    return {
        "code": "import-side-effect",
        "message": f"importing '{module_name}' started {' and '.join(started)}: its top-level code runs in "
        "mprun's own process when the workflow runs; put it under 'if __name__ == \"__main__\":'",
        "pids": " ".join(str(pid) for pid in sorted(children)),
    }


def _import(module_name: str) -> tuple[Any, dict[str, str] | None]:
    import importlib

    before = _running()
    try:
        module = importlib.import_module(module_name)
        return module, _side_effects(module_name, before)
    except ModuleNotFoundError as error:
        if _missing(module_name, error):
            return None, {
                "code": "import",
                "message": f"cannot import module '{module_name}': it is not on the "
                "workflow's pythonpath nor installed",
            }
        return None, {"code": "import", "message": f"importing '{module_name}' failed: {_describe(error)}"}
    except KeyboardInterrupt:
        raise  # in mprun's own process (a run imports its targets), Ctrl-C is for mprun
    except BaseException as error:  # noqa: BLE001 - user code may raise anything, SystemExit included
        return None, {"code": "import", "message": f"importing '{module_name}' raised {_describe(error)}"}


def _attribute(module: Any, reference: str) -> tuple[Any, dict[str, str] | None]:
    module_name, attribute = split(reference)
    found: Any = module
    walked: list[str] = []
    for part in attribute.split("."):
        owner = f"{module_name}:{'.'.join(walked)}" if walked else module_name
        try:
            found = getattr(found, part)
        except AttributeError:
            names = [name for name in dir(found) if not name.startswith("_")]
            close = difflib.get_close_matches(part, names, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            return None, {"code": "attribute", "message": f"'{owner}' has no attribute '{part}'{hint}"}
        except KeyboardInterrupt:
            raise
        except BaseException as error:  # noqa: BLE001 - a module __getattr__ may raise anything
            return None, {"code": "attribute", "message": f"getting '{part}' from '{owner}' raised {_describe(error)}"}
        walked.append(part)
    return found, None


def _problem(code: str, message: str, **extra: str) -> dict[str, str]:
    return {"code": code, "message": message, **extra}


def _article(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"


def _shape(request: dict[str, Any], found: Any) -> dict[str, str] | None:
    from multiprocessing.process import BaseProcess

    target, role = request["target"], request["role"]
    is_process_class = isinstance(found, type) and issubclass(found, BaseProcess)
    if role == "class" and not is_process_class:
        return _problem(
            "not-process-class", f"'{target}' is not a multiprocessing.Process subclass: use 'target:' for a function"
        )
    if role == "class" and found.__init__ is BaseProcess.__init__ and request["nargs"]:
        return _problem(
            "signature",
            f"'{target}' does not define __init__: its arguments go to "
            "Process.__init__(group, target, ...); define __init__ to take them",
        )
    if role == "function" and is_process_class:
        return _problem(
            "not-callable", f"'{target}' is a Process subclass: use 'class:' instead of 'target:' to run it"
        )
    if not callable(found):
        kind = type(found).__name__
        return _problem("not-callable", f"'{target}' is {_article(kind)} {kind}, not callable")
    if role == "function":
        for test, what in (
            (inspect.iscoroutinefunction, "coroutine"),
            (inspect.isasyncgenfunction, "async generator"),
            (inspect.isgeneratorfunction, "generator"),
        ):
            if test(found):
                return _problem(
                    "not-callable",
                    f"'{target}' is {_article(what)} {what} function: the process would "
                    f"only create {_article(what)} {what} and never run its body",
                )
    return None


def _parameters(signature: inspect.Signature) -> str:
    """`(a, b, *, c=1)`: the signature without annotations, which only clutter a message."""
    plain = [p.replace(annotation=inspect.Parameter.empty) for p in signature.parameters.values()]
    return str(signature.replace(parameters=plain, return_annotation=inspect.Signature.empty))


def _binding(request: dict[str, Any], found: Any) -> dict[str, str] | None:
    try:
        signature = inspect.signature(found)
    except (TypeError, ValueError):
        return None  # builtins without a signature: nothing to try
    try:
        signature.bind(*range(request["nargs"]), **dict.fromkeys(request["kwargs"]))
    except TypeError as error:
        given = f"{request['nargs']} positional argument{'s' if request['nargs'] != 1 else ''}"
        if request["kwargs"]:
            given += " and keywords " + ", ".join(request["kwargs"])
        called = "constructed" if request["role"] == "class" else "called"
        message = f"'{request['target']}{_parameters(signature)}' cannot be {called} with {given}: {error}"
        keyword = re.search(r"unexpected keyword argument '(\w+)'", str(error))
        return _problem("signature", message, **({"keyword": keyword[1]} if keyword else {}))
    return None


def examine(request: dict[str, Any], modules: dict[str, tuple[Any, dict[str, str] | None]]) -> dict[str, str] | None:
    """The problem with one target, or None."""
    module_name = split(request["target"])[0]
    if module_name not in modules:
        modules[module_name] = _import(module_name)
    module, problem = modules[module_name]
    if problem is not None:
        return problem
    found, problem = _attribute(module, request["target"])
    if problem is not None:
        return problem
    if request["role"] == "object":  # `{$import: ...}`: anything importable will do
        return None
    return _shape(request, found) or _binding(request, found)


def _watch_parent(parent: int) -> None:
    """End when mprun does: this interpreter runs in a session of its own, out of its reach."""
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(1)


def main() -> None:
    threading.Thread(target=_watch_parent, args=(os.getppid(),), daemon=True).start()
    request = json.load(sys.stdin)
    # Answers go to a private copy of stdout; whatever user code prints lands on stderr.
    answers: TextIO = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    # `python -m` put the current folder first; targets import from the workflow's pythonpath.
    sys.path[:1] = request["path"]
    modules: dict[str, tuple[Any, dict[str, str] | None]] = {}
    for item in request["targets"]:
        answers.write(json.dumps({"begin": item["id"]}) + "\n")
        try:
            problem = examine(item, modules)
        except BaseException as error:  # noqa: BLE001 - a __signature__ or metaclass of user code may raise
            problem = _problem("signature", f"inspecting '{item['target']}' raised {_describe(error)}")
        answers.write(json.dumps({"id": item["id"], "problem": problem}) + "\n")
    answers.write(json.dumps({"done": True}) + "\n")
    answers.close()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # threads or atexit hooks that user modules left behind must not keep us alive


if __name__ == "__main__":
    main()
