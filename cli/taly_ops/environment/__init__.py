"""The environments `taly` works on, and the one way to resolve a name into one.

`local` is the local estate (its state file: endpoints with their passwords, the AWS emulator);
`dev`, `staging` and `prod` are `contracts/<env>.json` (what `pulumi stack output --json` wrote),
with credentials read from Secrets Manager through the contract's secret ARNs when first needed.
Every command that acts on an environment (health, backup, drill, refresh) calls `resolve`; the
names, the "unknown environment" error and the "no local estate" error exist only here.

An `Environment` holds typed endpoints and builds its adapters (AWS clients, the Secrets Manager
reader, the backups bucket) lazily, once: resolving one costs no network call and no heavy import.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from ..adapters.aws import AwsTarget
from ..errors import BadInput
from .endpoints import (HostPort, LocalEstate, Login, PostgresTopology, RecoveryTargets, RedisTopology,
                        addresses)
from .model import Environment
from .names import (CLOUD, CONTRACTS_DIR, LOCAL, NAMES, PROTECTED, STATE_ENV_VAR, NoLocalEstate, UnknownEnvironment,
                    check_name, contract_command, no_local_estate)

if TYPE_CHECKING:
    from taly_platform.contract import EnvironmentContract

__all__ = ["AwsTarget", "CLOUD", "CONTRACTS_DIR", "Environment", "HostPort", "LOCAL", "LocalEstate", "Login", "NAMES",
           "NoLocalEstate", "PostgresTopology", "PROTECTED", "RecoveryTargets", "RedisTopology", "STATE_ENV_VAR",
           "UnknownEnvironment", "addresses", "check_name", "cloud_state_dir", "contract_addresses",
           "contract_command", "no_local_estate", "read_contract", "resolve"]

# --- resolving ------------------------------------------------------------------------------------------

def resolve(name: str, state_dir: Path | None = None, *, root: Path | None = None) -> Environment:
    """The environment called `name`; BadInput (exit 2) for an unknown name, a missing or invalid contract,
    or no running local estate. Nothing is contacted."""
    check_name(name)
    if name == LOCAL:
        return _local(state_dir, root)
    if root is None:
        from ..project import project_root

        root = project_root()
    path = root / CONTRACTS_DIR / f"{name}.json"
    return Environment(name, read_contract(name, path), path, cloud_state_dir(name, state_dir), project_root=root)


def read_contract(name: str, path: Path) -> "EnvironmentContract":
    import json

    from pydantic import ValidationError
    from taly_platform.contract import EnvironmentContract

    if not path.is_file():
        raise BadInput(f"no contract for {name}: {path} is missing; write it with `{contract_command(name)}`",
                       hint="the contract is what the Pulumi program exports: endpoints, ids and ARNs, no secret")
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise BadInput(f"{path}: not a JSON contract ({exc})", hint=f"rewrite it with `{contract_command(name)}`") from None
    try:
        contract = EnvironmentContract.model_validate(data)
    except ValidationError as exc:
        raise BadInput(f"{path}: not a valid environment contract: {first_error(exc)}",
                       hint=f"rewrite it with `{contract_command(name)}`") from None
    if contract.environment != name:
        raise BadInput(f"{path} is the contract of '{contract.environment}', not '{name}'")
    return contract


def first_error(exc) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"]) or "(top)"
    return f"{where}: {err['msg']}"


def _local(state_dir: Path | None, root: Path | None) -> Environment:
    from pydantic import ValidationError
    from taly_platform.contract import EnvironmentContract

    from ..local.state import load, resolve_state_dir

    directory = resolve_state_dir(state_dir)
    state = load(directory) if directory.is_dir() else None
    if state is None:
        raise no_local_estate(directory)
    if state.phase != "running" or not state.contract:
        raise NoLocalEstate(f"the local estate in {directory} is not running (phase {state.phase!r})",
                            hint="wait for `taly local up` to finish, or run it again")
    try:
        contract = EnvironmentContract.model_validate(state.contract)
    except ValidationError as exc:
        raise BadInput(f"the local estate's contract in {state.path} is not valid: {first_error(exc)}",
                       hint="restart it: `taly local down && taly local up`") from None
    return Environment(LOCAL, contract, state.path, directory, project_root=root,
                       local=LocalEstate.from_endpoints(state.endpoints, state.path))


def cloud_state_dir(env: str, option: Path | None = None) -> Path:
    """Where a cloud environment's audit log and drill registry live on this machine.

    --state-dir, else $TALY_STATE_DIR/<env>, else .taly/<env> under the project root.
    """
    from ..project import project_root

    if option is not None:
        path = option
    elif base := os.environ.get(STATE_ENV_VAR):
        path = Path(base) / env
    else:
        path = project_root() / ".taly" / env
    path = path.expanduser().absolute()
    if path.exists() and not path.is_dir():
        raise BadInput(f"state directory {path} exists and is not a directory")
    return path


def contract_addresses(env: str) -> set[tuple[str, int]] | None:
    """Every (host, port) the database of `env` answers on, from contracts/<env>.json alone (no credentials).

    None when there is no contract for it; a contract that exists but cannot be read is BadInput, for
    a safety net must not switch itself off. A safety net for commands that write to one environment:
    a contract copied from another (say staging's file still pointing at prod) must not lead there.
    """
    from ..project import project_root

    root = project_root()
    path = root / CONTRACTS_DIR / f"{env}.json"
    if not path.exists():
        return None
    try:
        contract = read_contract(env, path)
    except BadInput as exc:
        raise BadInput(f"cannot check against {env}'s endpoints: {exc.message}", hint=exc.hint) from None
    return Environment(env, contract, path, root, project_root=root).source_addresses()
