"""The program body shared by `pulumi up` and the offline plan."""

from __future__ import annotations

import json
from typing import Any

import pulumi

from .config import STACK_KEYS, StackConfig
from .stackfile import StackConfigError, config_from_mapping


def read_stack_config() -> StackConfig:
    """Read this stack's config from the Pulumi engine and validate it before any resource."""
    mapping: dict[str, Any] = {}
    for key in STACK_KEYS.values():
        namespace, _, name = key.partition(":")
        raw = pulumi.Config(namespace).get(name)
        if raw is None:
            continue
        try:
            mapping[key] = json.loads(raw)
        except json.JSONDecodeError:
            mapping[key] = raw
    env = pulumi.get_stack()
    try:
        return config_from_mapping(env, mapping, source=f"stacks/Pulumi.{env}.yaml")
    except StackConfigError as exc:
        raise pulumi.RunError(str(exc)) from None


def main() -> dict[str, pulumi.Output[Any]]:
    from .components.estate import Estate

    config = read_stack_config()
    estate = Estate(config)
    contract = estate.contract()
    for key, value in contract.items():
        pulumi.export(key, value)
    return contract
