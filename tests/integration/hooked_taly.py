"""The taly CLI with a step hook that holds at one named step: for tests that signal or kill a process
while its scratch instance is up (production code has no pause of its own).

    python tests/integration/hooked_taly.py STEP SECONDS <taly arguments...>

STEP is a name operations give their steps (operations/steps.py): `restore` (a logical drill, with its
scratch PostgreSQL up and nothing restored), `verify` (an RDS drill, its instance available),
`restore_scratch` (a data refresh, its scratch instance up).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve()


def command(step: str, seconds: float, *args: str) -> list[str]:
    """The argv that runs `taly *args` holding `seconds` at `step`."""
    return [sys.executable, str(HERE), step, f"{seconds:g}", *args]


def main() -> None:
    from taly_ops.app import main as taly
    from taly_ops.operations.steps import STEP_HOOK

    step, seconds = sys.argv[1], float(sys.argv[2])

    def hold(name: str) -> None:
        if name == step:
            print(f"hooked_taly: holding {seconds:g}s at step {step}", file=sys.stderr, flush=True)
            time.sleep(seconds)

    STEP_HOOK.set(hold)
    sys.argv = ["taly", *sys.argv[3:]]
    taly()


if __name__ == "__main__":
    main()
