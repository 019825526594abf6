"""Recording Pulumi mocks: answer the engine like a cloud would and remember every registration.

`MockMonitor` hands `Mocks.new_resource` the inputs but not the parent, protect flag or
ignore-changes list; `RecordingMonitor` keeps those from the raw registration request.
Outputs that the program reads back (ARNs, endpoints, OIDC issuer) are synthesised per type
so that dependent resources see realistic values.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from pulumi.runtime import Mocks, MockCallArgs, MockResourceArgs
from pulumi.runtime.mocks import MockMonitor

SECRET_SIG = "4dabf18193072939515e22adb298388d"
UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
REDACTED = "[secret]"
ACCOUNT_ID = "123456789012"


@dataclass
class Registration:
    type: str
    name: str
    parent: str | None
    urn: str
    parent_urn: str | None
    inputs: dict[str, Any]
    custom: bool
    protect: bool
    ignore_changes: list[str]


def redact(value: Any) -> Any:
    """Replace Pulumi secret envelopes with a marker, recursively."""
    if isinstance(value, dict):
        if value.get(SECRET_SIG) is not None and "value" in value:
            return REDACTED
        return {k: redact(v) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v) for v in value]
    if value == UNKNOWN:
        return "[unknown]"
    return _asset(value)


def whole_numbers(value: Any) -> Any:
    """Integral floats back to ints, recursively.

    Inputs cross Pulumi's wire as a protobuf Struct, where every number is a double: the program's
    `allocated_storage=200` arrives as 200.0. The engine writes such a number as `200` (JSON from
    Go's float64), and so does the plan.
    """
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: whole_numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [whole_numbers(v) for v in value]
    return value


def _asset(value: Any) -> Any:
    """A Pulumi asset or archive (a Lambda function's code) as plain data: what it holds, not its bytes."""
    import pulumi

    if isinstance(value, pulumi.AssetArchive):
        return {"archive": {name: _asset(v) for name, v in sorted(value.assets.items())}}
    if isinstance(value, pulumi.FileAsset):
        return {"file": Path(value.path).name}
    if isinstance(value, (pulumi.FileArchive, pulumi.RemoteArchive)):
        return {"archive": value.path if isinstance(value, pulumi.FileArchive) else value.uri}
    if isinstance(value, pulumi.StringAsset):
        return {"text": f"[{len(value.text)} characters]"}
    return value


def _unwrap(value: Any) -> Any:
    if isinstance(value, dict):
        if value.get(SECRET_SIG) is not None and "value" in value:
            return _unwrap(value["value"])
        return {k: _unwrap(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unwrap(v) for v in value]
    return value


def _short(name: str) -> str:
    return hashlib.sha1(name.encode()).hexdigest()[:8]


def _computed(typ: str, name: str, inputs: dict[str, Any], region: str) -> dict[str, Any]:
    """Outputs the real provider would compute, shaped well enough for the program to use."""
    service = typ.split(":")[1].split("/")[0]
    ident = inputs.get("identifier") or inputs.get("name") or inputs.get("bucket") or name
    out: dict[str, Any] = {"arn": f"arn:aws:{service}:{region}:{ACCOUNT_ID}:{typ.split(':')[-1].lower()}/{ident}"}
    if typ == "aws:kms/key:Key":
        out |= {"keyId": f"key-{_short(name)}", "arn": f"arn:aws:kms:{inputs.get('region', region)}:{ACCOUNT_ID}:key/{_short(name)}"}
    elif typ == "aws:eks/cluster:Cluster":
        out |= {
            "endpoint": f"https://{_short(name).upper()}.gr7.{region}.eks.amazonaws.com",
            "identities": [{"oidcs": [{"issuer": f"https://oidc.eks.{region}.amazonaws.com/id/{_short(name).upper()}"}]}],
            "certificateAuthority": {"data": "LS0tLS1CRUdJTi0tLS0t"},
            "vpcConfig": {**inputs.get("vpcConfig", {}), "clusterSecurityGroupId": f"sg-{_short(name + 'cluster')}"},
        }
    elif typ == "aws:rds/instance:Instance":
        host = f"{ident}.{_short(name)}.{region}.rds.amazonaws.com"
        out |= {"address": host, "endpoint": f"{host}:5432", "port": 5432, "resourceId": f"db-{_short(name).upper()}"}
    elif typ == "aws:elasticache/replicationGroup:ReplicationGroup":
        rg = inputs.get("replicationGroupId", name)
        out |= {
            "primaryEndpointAddress": f"master.{rg}.{_short(name)}.euw1.cache.amazonaws.com",
            "readerEndpointAddress": f"replica.{rg}.{_short(name)}.euw1.cache.amazonaws.com",
        }
    elif typ == "aws:mq/broker:Broker":
        out |= {"instances": [{"endpoints": [f"amqps://b-{_short(name)}.mq.{region}.amazonaws.com:5671"]}]}
    elif typ == "aws:s3/bucket:Bucket":
        out |= {"bucket": inputs.get("bucket", name), "arn": f"arn:aws:s3:::{inputs.get('bucket', name)}"}
    elif typ == "aws:iam/role:Role":
        out |= {"arn": f"arn:aws:iam::{ACCOUNT_ID}:role/{inputs.get('name', name)}", "name": inputs.get("name", name)}
    elif typ == "aws:iam/openIdConnectProvider:OpenIdConnectProvider":
        url = str(inputs.get("url", "")).removeprefix("https://")
        out |= {"arn": f"arn:aws:iam::{ACCOUNT_ID}:oidc-provider/{url}"}
    elif typ == "aws:wafv2/webAcl:WebAcl":
        out |= {"arn": f"arn:aws:wafv2:{region}:{ACCOUNT_ID}:regional/webacl/{inputs.get('name', name)}/{_short(name)}-0000-4000-8000-000000000000"}
    elif typ == "aws:amp/workspace:Workspace":
        out |= {"prometheusEndpoint": f"https://aps-workspaces.{region}.amazonaws.com/workspaces/ws-{_short(name)}/"}
    elif typ == "aws:backup/plan:Plan":
        out |= {"id": f"plan-{_short(name)}"}
    elif typ == "random:index/randomPassword:RandomPassword":
        out |= {"result": f"mock-{_short(name)}-password"}
    return out


def _parent_name(urn: str) -> str | None:
    """The parent's name from its URN; None when the parent is the stack itself."""
    if not urn:
        return None
    qualified_type = urn.split("::")[2]
    return None if qualified_type.split("$")[-1] == "pulumi:pulumi:Stack" else urn.split("::")[-1]


# Pulumi answers invokes from a thread pool: every chart of an environment would run its own helm
# at once (10 per environment, 30 for --env all, 15 MB each beside the 35 MB of helm's code they
# share). Two at a time keep both cores busy without that peak of memory; a plan's workers share
# their two (`share_helm_slots`). A slot is held while helm runs, not while its output is parsed.
HELM_SLOTS = 2
_helm_slots: Any = threading.BoundedSemaphore(HELM_SLOTS)


def share_helm_slots(slots: Any) -> None:
    """Use these helm slots (a multiprocessing semaphore the plan's workers share) instead of this process's own."""
    global _helm_slots
    _helm_slots = slots


def _helm_template(args: dict[str, Any]) -> dict[str, Any]:
    """Answer helm.v3.Chart's invoke with the real `helm template` (an empty answer would hide the chart)."""
    import json

    from . import helm_cache

    opts = json.loads(args["jsonOpts"])
    objects = helm_cache.template(Path(opts["path"]), opts["release_name"], opts.get("namespace"),
                                  opts.get("values") or {}, kube_version=opts.get("kube_version"), gate=_helm_slots)
    if not objects:
        raise RuntimeError(f"helm template rendered nothing for {opts['release_name']}")
    return {"result": objects}


def _yaml_decode(args: dict[str, Any]) -> dict[str, Any]:
    from taly_platform.safe_yaml import loads_all

    return {"result": [doc for doc in loads_all(args["text"], "kubernetes:yaml:decode") if doc]}


def without_source_positions() -> None:
    """Stop Pulumi finding where each resource was declared, in this process: the mocks never read it.

    For every registration Pulumi walks the stack (`traceback.extract_stack`, which stats and reads
    each source file on it) to tell the engine the declaring line; `RecordingMonitor` records no
    such thing. A tenth of a run's CPU. Where Pulumi no longer has the function, nothing changes.
    """
    from pulumi.runtime import resource
    from pulumi.runtime.proto import source_pb2

    if hasattr(resource, "_get_stack_trace"):
        resource._get_stack_trace = source_pb2.StackTrace  # called without arguments: an empty trace


class RecordingMocks(Mocks):
    def __init__(self, region: str, invokes: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] | None = None):
        self.region = region
        self.invokes = {
            "aws:index/getCallerIdentity:getCallerIdentity": lambda a: {
                "accountId": ACCOUNT_ID, "arn": f"arn:aws:iam::{ACCOUNT_ID}:user/plan", "userId": "PLAN"},
            "aws:index/getPartition:getPartition": lambda a: {"partition": "aws", "dnsSuffix": "amazonaws.com"},
            "aws:index/getRegion:getRegion": lambda a: {"name": self.region, "region": self.region},
            "kubernetes:helm:template": _helm_template,
            "kubernetes:yaml:decode": _yaml_decode,
            **(invokes or {}),
        }

    def new_resource(self, args: MockResourceArgs) -> tuple[str, dict[str, Any]]:
        inputs = _unwrap(args.inputs)
        state = {**inputs, **_computed(args.typ, args.name, inputs, inputs.get("region", self.region))}
        state.setdefault("name", args.name)  # auto-named resources get their logical name
        if args.typ == "aws:s3/bucket:Bucket":
            return state["bucket"], state  # an S3 bucket's id is its name
        return state.get("id") or f"{args.name}-id", state

    def call(self, args: MockCallArgs) -> dict[str, Any]:
        handler = self.invokes.get(args.token)
        if handler is None:
            raise NotImplementedError(f"the offline plan has no answer for invoke {args.token}")
        return handler(_unwrap(args.args))


class RecordingMonitor(MockMonitor):
    def __init__(self, mocks: RecordingMocks):
        super().__init__(mocks)
        self.registrations: list[Registration] = []

    def RegisterResource(self, request):  # noqa: N802 (gRPC method name)
        response = super().RegisterResource(request)
        if request.type != "pulumi:pulumi:Stack":
            from pulumi.runtime import rpc

            parent = _parent_name(request.parent)
            inputs = rpc.deserialize_properties(request.object)
            self.registrations.append(Registration(
                type=request.type,
                name=request.name,
                parent=parent,
                urn=self.make_urn(request.parent, request.type, request.name),
                parent_urn=request.parent if parent else None,
                inputs=redact(whole_numbers(inputs)),
                custom=bool(request.custom),
                protect=bool(request.protect),
                ignore_changes=list(request.ignoreChanges),
            ))
        return response
