"""The plan's worker server: imports what the program uses once, then plans every environment asked, one process each.

Started by `plan.Workers` as `python -c ...`, it reads the CLI's `sys.path` from stdin, imports
`preload` (while the CLI reads the stack files), then the stack configs. It forks a worker per
environment but the first, and plans the first itself: a server idle beside its workers would hold
a copy of every page they write to (some 50 MB). The workers share its two helm slots. Each sends its
plan (or its error) to the CLI through the server's stdout, one frame at a time, and exits at once.
Nothing else may reach that stdout: whatever the program prints goes to stderr. When the CLI closes
the server's stdin (it has every plan, or it died) the server stops its whole process group.
"""

from __future__ import annotations

import gc
import os
import pickle
import signal
import sys
import threading
import traceback
from typing import Any

from . import preload  # noqa: F401 - what every run uses, imported before any fork
from .mocks import HELM_SLOTS, share_helm_slots
from .plan import FRAME, run_program


def serve() -> None:
    """Read the configs, plan them (one process each), send the plans; exit when all are sent."""
    results = os.dup(1)
    os.dup2(2, 1)
    try:
        configs = pickle.load(sys.stdin.buffer)
    except EOFError:
        return  # the CLI stopped before asking (a stack file was wrong)
    import multiprocessing

    context = multiprocessing.get_context("fork")  # nothing has run Pulumi here: forking is safe
    share_helm_slots(context.BoundedSemaphore(HELM_SLOTS))
    sending = context.Lock()
    # A run makes a million short-lived objects and 3 MB of cyclic garbage, and each process here
    # exits after its run: garbage collection would cost 7 % of a run (at 20,000 allocations, not
    # Python's 700) to free those 3 MB a moment before the exit does.
    gc.disable()
    workers = [pid for index in range(1, len(configs)) if (pid := _fork(index, configs[index], results, sending))]
    threading.Thread(target=_stop_with_the_cli, daemon=True).start()
    _plan(0, configs[0], results, sending)
    for pid in workers:
        os.waitpid(pid, 0)
    sys.stdout.flush()
    os._exit(0)  # the CLI has every plan: no teardown wanted


def _fork(index: int, config: Any, results: int, sending: Any) -> int:
    """Start a worker planning this environment; its pid. The worker exits once its plan is sent, freeing its memory."""
    sys.stdout.flush()
    if pid := os.fork():
        return pid
    code = 1
    try:
        _plan(index, config, results, sending)
        code = 0
    except BaseException:
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _stop_with_the_cli() -> None:
    """Stop this server, its workers and their helm runs at once when the CLI closes our stdin: it has every
    plan, or it is gone (killed, stopped by a signal it does not handle), and nobody wants the rest."""
    sys.stdin.buffer.read()
    if os.getpgrp() == os.getpid():  # our own process group, as `plan.Workers` starts us: nobody else is in it
        os.killpg(os.getpgrp(), signal.SIGKILL)


def _plan(index: int, config: Any, results: int, sending: Any) -> None:
    """Plan one environment and send (index, plan, error, traceback) as one frame."""
    try:
        outcome = (index, run_program(config), None, None)
    except BaseException as exc:  # the CLI raises it: exit code and message as if planned in its own process
        outcome = (index, None, _portable(exc), traceback.format_exc())
    payload = pickle.dumps(outcome, protocol=pickle.HIGHEST_PROTOCOL)
    with sending:
        view = memoryview(FRAME.pack(len(payload)) + payload)
        while view:
            view = view[os.write(results, view):]


def _portable(exc: BaseException) -> BaseException:
    """The exception itself when it survives pickling, else a RuntimeError that names it."""
    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:
        return RuntimeError(f"{type(exc).__name__}: {exc}")
