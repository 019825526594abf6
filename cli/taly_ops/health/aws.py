"""The AWS control plane's view (boto3): the RDS instance and its replicas `available`, Multi-AZ as
contracted; the ElastiCache replication group `available`, automatic failover as contracted; the MQ
broker RUNNING; the EKS cluster ACTIVE with its node groups ACTIVE and without health issues.

Transitional states (an RDS backup, a modification, an EKS update) warn; anything else that is not
the healthy state fails. Locally the records come from the AWS emulator (moto), which reports
`available`, `RUNNING` and `ACTIVE` for what it holds: these checks then prove that the records
exist and match the contract, not that a database runs (the postgres checks do that).
"""

from __future__ import annotations

from functools import partial

from .model import Probe, Recorder
from ..environment import Environment
from .thresholds import Thresholds

C = "aws"
REQUIRES = ("boto3", "botocore.config")  # imported by the operation before the clocks start
RDS_TRANSITIONAL = {"backing-up", "modifying", "maintenance", "upgrading", "configuring-enhanced-monitoring",
                    "configuring-log-exports", "storage-optimization", "rebooting", "renaming", "resetting-master-credentials"}
CACHE_TRANSITIONAL = {"modifying", "snapshotting"}
MQ_TRANSITIONAL = {"REBOOT_IN_PROGRESS", "CRITICAL_ACTION_REQUIRED"}
EKS_TRANSITIONAL = {"UPDATING"}


def probes(target: Environment, th: Thresholds) -> list[Probe]:
    t = th.timeouts.aws
    db = target.contract.database
    out = [Probe(C, f"rds {db.primary_id}", partial(rds_instance, target, db.primary_id, None, t), timeout=t)]
    out += [Probe(C, f"rds {rid}", partial(rds_instance, target, rid, db.primary_id, t), timeout=t)
            for rid in db.replica_ids]
    out += [
        Probe(C, f"elasticache {target.contract.cache.replication_group_id}", partial(elasticache, target, t), timeout=t),
        Probe(C, f"mq {target.contract.broker.broker_name}", partial(mq, target, t), timeout=t),
        Probe(C, f"eks {target.contract.cluster.name}", partial(eks_cluster, target, t), timeout=t),
        Probe(C, f"eks {target.contract.cluster.name} node groups", partial(eks_nodegroups, target, t), timeout=t),
    ]
    return out


def _grade(state: str | None, healthy: str, transitional: set[str]) -> str:
    if state == healthy:
        return "ok"
    return "warn" if state in transitional else "fail"


def _code(exc: BaseException) -> str:
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code") or type(exc).__name__)


def _describe(rec: Recorder, name: str, expected: str, call: str, not_found: str, fetch):
    """The service's answer, or None after recording the resource as missing; other errors propagate."""
    try:
        return fetch()
    except Exception as exc:  # noqa: BLE001
        if _code(exc) != not_found:
            raise
        rec.add(name, "fail", "not found", expected, f"{call}: {not_found}")
        return None


def rds_instance(target: Environment, identifier: str, source: str | None, timeout: float):
    rec = Recorder(C)
    name = f"rds {identifier}"
    found = _describe(rec, name, "available", f"DescribeDBInstances {identifier}", "DBInstanceNotFound",
                      lambda: target.aws_client("rds", timeout).describe_db_instances(DBInstanceIdentifier=identifier))
    if found is None:
        return rec.results
    inst = found["DBInstances"][0]
    status = inst.get("DBInstanceStatus")
    rec.add(name, _grade(status, "available", RDS_TRANSITIONAL), status, "available",
            f"DescribeDBInstances {identifier} -> DBInstanceStatus={status}")
    if source is None:
        want, got = target.contract.database.multi_az, bool(inst.get("MultiAZ"))
        rec.add(f"rds {identifier} multi-az", "ok" if got == want else "fail", str(got).lower(),
                f"{str(want).lower()} (contract)", f"DescribeDBInstances {identifier} -> MultiAZ={got}")
    else:
        got_source = inst.get("ReadReplicaSourceDBInstanceIdentifier") or ""
        ok = got_source.split(":")[-1] == source
        rec.add(f"rds {identifier} replica of", "ok" if ok else "fail", got_source or "none", source,
                f"DescribeDBInstances {identifier} -> ReadReplicaSourceDBInstanceIdentifier={got_source or 'none'}")
    return rec.results


def elasticache(target: Environment, timeout: float):
    rec = Recorder(C)
    cache = target.contract.cache
    name = f"elasticache {cache.replication_group_id}"
    found = _describe(rec, name, "available", f"DescribeReplicationGroups {cache.replication_group_id}",
                      "ReplicationGroupNotFoundFault",
                      lambda: target.aws_client("elasticache", timeout).describe_replication_groups(
                          ReplicationGroupId=cache.replication_group_id))
    if found is None:
        return rec.results
    group = found["ReplicationGroups"][0]
    status = group.get("Status")
    rec.add(name, _grade(status, "available", CACHE_TRANSITIONAL), status, "available",
            f"DescribeReplicationGroups {cache.replication_group_id} -> Status={status}")
    failover = group.get("AutomaticFailover")
    want = "enabled" if cache.automatic_failover else "disabled"
    status = "ok" if failover == want else ("warn" if failover in ("enabling", "disabling") else "fail")
    rec.add(f"{name} automatic failover", status, failover, f"{want} (contract)",
            f"DescribeReplicationGroups {cache.replication_group_id} -> AutomaticFailover={failover}")
    return rec.results


def mq(target: Environment, timeout: float):
    rec = Recorder(C)
    broker = target.contract.broker
    name = f"mq {broker.broker_name}"
    described = _describe(rec, name, "RUNNING", f"DescribeBroker {broker.broker_id}", "NotFoundException",
                          lambda: target.aws_client("mq", timeout).describe_broker(BrokerId=broker.broker_id))
    if described is None:
        return rec.results
    state = described.get("BrokerState")
    rec.add(name, _grade(state, "RUNNING", MQ_TRANSITIONAL), state, "RUNNING",
            f"DescribeBroker {broker.broker_id} -> BrokerState={state}, DeploymentMode={described.get('DeploymentMode')}")
    mode = described.get("DeploymentMode")
    rec.add(f"{name} deployment mode", "ok" if mode == broker.deployment_mode else "fail", mode,
            f"{broker.deployment_mode} (contract)", f"DescribeBroker {broker.broker_id} -> DeploymentMode={mode}")
    return rec.results


def eks_cluster(target: Environment, timeout: float):
    rec = Recorder(C)
    cluster = target.contract.cluster.name
    found = _describe(rec, f"eks {cluster}", "ACTIVE", f"DescribeCluster {cluster}", "ResourceNotFoundException",
                      lambda: target.aws_client("eks", timeout).describe_cluster(name=cluster))
    if found is None:
        return rec.results
    status = found["cluster"].get("status")
    rec.add(f"eks {cluster}", _grade(status, "ACTIVE", EKS_TRANSITIONAL), status, "ACTIVE",
            f"DescribeCluster {cluster} -> status={status}")
    return rec.results


def expected_nodegroups(target: Environment) -> list[str] | None:
    """Node group names from the stack file; [] locally (the estate has none); None when unknown."""
    if target.is_local:
        return []
    try:
        stack = target.stack()
    except Exception:  # noqa: BLE001
        return None
    return [g.name for g in stack.cluster.node_groups] if stack is not None else None


def eks_nodegroups(target: Environment, timeout: float):
    rec = Recorder(C)
    cluster = target.contract.cluster.name
    name = f"eks {cluster} node groups"
    client = target.aws_client("eks", timeout)
    names = client.list_nodegroups(clusterName=cluster).get("nodegroups") or []
    want = expected_nodegroups(target)
    problems, transitional, seen = [], [], []
    for ng in names:
        described = client.describe_nodegroup(clusterName=cluster, nodegroupName=ng)["nodegroup"]
        status, issues = described.get("status"), (described.get("health") or {}).get("issues") or []
        seen.append(f"{ng}={status}" + (f" ({len(issues)} issue(s))" if issues else ""))
        if issues:
            problems.append(f"{ng}: " + "; ".join(f"{i.get('code')}: {i.get('message')}" for i in issues[:2]))
        grade = _grade(status, "ACTIVE", EKS_TRANSITIONAL)
        if grade == "fail":
            problems.append(f"{ng} is {status}")
        elif grade == "warn":
            transitional.append(f"{ng} is {status}")
    missing = [g for g in (want or []) if g not in names]
    problems += [f"{g} missing" for g in missing]
    status = "fail" if problems else ("warn" if transitional else "ok")
    threshold = "ACTIVE, no health issues" + (f"; contracted: {', '.join(want)}" if want else "")
    observed = f"{len(names)} group(s)" + (f", {len(missing)} missing" if missing else "")
    detail = f"ListNodegroups/DescribeNodegroup {cluster} -> {', '.join(seen) or 'none'}"
    if problems or transitional:
        detail = "; ".join(problems + transitional) + ". " + detail
    if not names and want is None:
        status, detail = "warn", detail + " (no stack file to say which are contracted)"
    rec.add(name, status, observed, threshold, detail)
    return rec.results
