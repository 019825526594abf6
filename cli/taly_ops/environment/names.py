"""The environment names, and the two errors every command gives about them (both exit 2)."""

from __future__ import annotations

from pathlib import Path

from taly_platform.config import ENVIRONMENTS as CLOUD  # the Pulumi stacks: dev, staging, prod

from ..errors import BadInput

LOCAL = "local"
NAMES: tuple[str, ...] = (LOCAL, *CLOUD)
PROTECTED: tuple[str, ...] = ("prod",)  # its own systems change only with an approval (operations/steps.confirm)
CONTRACTS_DIR = "contracts"
STATE_ENV_VAR = "TALY_STATE_DIR"  # where a cloud environment's audit log and drill registry live


class UnknownEnvironment(BadInput):
    pass


class NoLocalEstate(BadInput):
    """No (running) local estate: configuration, exit 2, for every command."""


def check_name(name: str, flag: str | None = None) -> str:
    """name if it is an environment; else the one "unknown environment" error (exit 2)."""
    if name not in NAMES:
        where = f"{flag}: " if flag else ""
        raise UnknownEnvironment(f"{where}unknown environment '{name}'; known: {', '.join(NAMES)}")
    return name


def no_local_estate(state_dir: Path) -> NoLocalEstate:
    return NoLocalEstate(f"no local estate in {state_dir}: run `taly local up`",
                         hint="or pass the --state-dir (or set $TALY_LOCAL_STATE) of the estate you started")


def contract_command(env: str) -> str:
    return f"pulumi stack output --stack {env} --json > {CONTRACTS_DIR}/{env}.json"
