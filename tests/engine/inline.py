"""Runs one program file under the real Pulumi engine: ``python inline.py WORK_DIR STACK OPERATION PROGRAM``.

The engine is the real CLI (``pulumi`` on PATH, built by tests/gotools.py); the program runs in this process through
the Python SDK's own language runtime server (``pulumi.automation``, an inline program), which the CLI drives with
``--client``. That replaces the ``pulumi-language-python`` plugin, whose Go module the module proxy this project
reaches does not serve (see docs/testing.md, "The engine tier"): the engine still plans, encrypts, stores and
reports; the program runs as under the plugin, through ``pulumi.runtime.run_in_stack`` with the stack's config
and secret keys from the engine's Run request (pulumi 3.272.0, pulumi/automation/_server.py, LanguageServer.Run).

OPERATION is ``preview``, ``up`` or ``destroy``. Prints the engine's output; exits 1 with the engine's own words
when the operation failed. With ``KRC_ENGINE_VERBOSE=1`` the engine also logs at its highest verbosity, with debug
output, to stderr (``-v=9 --logtostderr --debug``).
"""
from __future__ import annotations

import os
import runpy
import sys

from pulumi import automation as auto


def main(work_dir: str, stack_name: str, operation: str, program_file: str) -> int:
    sys.path.insert(0, work_dir)

    def program() -> None:
        runpy.run_path(program_file, run_name="__main__")

    workspace = auto.LocalWorkspace(work_dir=work_dir, program=program)
    stack = auto.Stack.select(stack_name, workspace)
    verbose = {}
    if os.environ.get("KRC_ENGINE_VERBOSE") == "1":
        verbose = {"log_verbosity": 9, "log_to_std_err": True, "debug": True,
                   "on_error": lambda line: print(line, file=sys.stderr)}
    try:
        getattr(stack, operation)(on_output=print, color="never", **verbose)
    except auto.CommandError as error:
        print(str(error), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:5]))
