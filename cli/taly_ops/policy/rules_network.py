"""Rules over the network and compute: the VPC's layout across zones, security groups, EKS and its nodes."""

from __future__ import annotations

from .model import Violation, rule
from .resources import EKS, SUBNET, WORLD, number

PROD_ZONES = 3


@rule("eks-private-endpoint", "mandatory", "The EKS API is private; a public endpoint needs an allow-list.",
      "The control plane is not on the internet.")
def eks_private_endpoint(view):
    for c in view.of_type(EKS):
        vpc = c.props.get("vpcConfig") or {}
        if not vpc.get("endpointPrivateAccess"):
            yield Violation(c.name, "private endpoint access is off")
        if vpc.get("endpointPublicAccess") and (not vpc.get("publicAccessCidrs") or set(vpc["publicAccessCidrs"]) & set(WORLD)):
            yield Violation(c.name, "public endpoint without an allow-list")


@rule("eks-logs-and-secrets", "mandatory", "EKS logs api/audit/authenticator and encrypts secrets with KMS.",
      "Who did what to the cluster is on the record; Kubernetes secrets are encrypted at rest.")
def eks_logs_and_secrets(view):
    for c in view.of_type(EKS):
        missing = {"api", "audit", "authenticator"} - set(c.props.get("enabledClusterLogTypes") or [])
        if missing:
            yield Violation(c.name, f"control-plane logs off: {', '.join(sorted(missing))}")
        if "secrets" not in ((c.props.get("encryptionConfig") or {}).get("resources") or []):
            yield Violation(c.name, "Kubernetes secrets are not KMS-encrypted")


@rule("eks-prod-nodes-multi-az", "mandatory", "Prod node groups keep at least 3 nodes, in subnets of 3 zones.",
      "The seeds' HA: a multi-AZ Kubernetes cluster, minimum 3 instances; a zone's loss leaves nodes to reschedule on.")
def eks_prod_nodes_multi_az(view):
    if not view.prod:
        return
    for group in view.of_type("aws:eks/nodeGroup:NodeGroup"):
        minimum = number((group.props.get("scalingConfig") or {}).get("minSize"))
        if minimum < PROD_ZONES:
            yield Violation(group.name, f"minSize {minimum:g} (< {PROD_ZONES}) in prod")
        # One private subnet per zone (vpc-prod-multi-az holds the zones), so subnets count zones.
        subnets = set(group.props.get("subnetIds") or [])
        if len(subnets) < PROD_ZONES:
            yield Violation(group.name, f"nodes in {len(subnets)} subnet(s) (< {PROD_ZONES} zones) in prod")


@rule("imdsv2-required", "mandatory", "Node launch templates require IMDSv2 and encrypt their disks.",
      "IMDSv1 lets a pod-level SSRF steal the node's credentials.")
def imdsv2_required(view):
    for t in view.of_type("aws:ec2/launchTemplate:LaunchTemplate"):
        if (t.props.get("metadataOptions") or {}).get("httpTokens") != "required":
            yield Violation(t.name, "IMDSv2 not required (httpTokens != required)")
        for m in t.props.get("blockDeviceMappings") or []:
            if str((m.get("ebs") or {}).get("encrypted")).lower() != "true":
                yield Violation(t.name, f"volume {m.get('deviceName')} not encrypted")


def _world_ingress(rules: list[dict]) -> list[dict]:
    return [r for r in rules if set(r.get("cidrBlocks") or []) & set(WORLD) or set(r.get("ipv6CidrBlocks") or []) & set(WORLD)]


@rule("sg-no-world-ingress", "mandatory", "No security group admits 0.0.0.0/0, except a load balancer on 443.",
      "Only the load balancer faces the internet, and only over TLS.")
def sg_no_world_ingress(view):
    for sg in view.of_type("aws:ec2/securityGroup:SecurityGroup"):
        load_balancer = (sg.props.get("tags") or {}).get("role") == "load-balancer"
        for r in _world_ingress(sg.props.get("ingress") or []):
            if not (load_balancer and r.get("fromPort") == 443 and r.get("toPort") == 443):
                yield Violation(sg.name, f"ingress from the world on {r.get('fromPort')}-{r.get('toPort')}")
    for r in view.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule", "aws:ec2/securityGroupRule:SecurityGroupRule"):
        cidrs = {r.props.get("cidrIpv4"), r.props.get("cidrIpv6"), *(r.props.get("cidrBlocks") or [])}
        if r.props.get("type", "ingress") == "ingress" and cidrs & set(WORLD) and r.props.get("fromPort") != 443:
            yield Violation(r.name, "ingress from the world")


@rule("vpc-default-sg-closed", "mandatory", "Every VPC's default security group is managed and admits and sends nothing.",
      "AWS FSBP EC2.2: a resource launched without a security group must not land in an open one.")
def vpc_default_sg_closed(view):
    defaults = view.of_type("aws:ec2/defaultSecurityGroup:DefaultSecurityGroup")
    for g in defaults:
        if g.props.get("ingress") or g.props.get("egress"):
            yield Violation(g.name, "the default security group has rules")
    vpcs = view.of_type("aws:ec2/vpc:Vpc")
    if len(defaults) < len(vpcs):
        yield Violation("(network)", f"{len(vpcs)} VPC(s) but {len(defaults)} emptied default security group(s)")


@rule("vpc-flow-logs", "mandatory", "Every VPC records flow logs of all traffic.",
      "AWS FSBP EC2.6: the network's own record of who talked to whom, for incidents and audits.")
def vpc_flow_logs(view):
    logs = view.of_type("aws:ec2/flowLog:FlowLog")
    for f in logs:
        if f.props.get("trafficType") != "ALL":
            yield Violation(f.name, f"records {f.props.get('trafficType')} traffic, not ALL")
    vpcs = view.of_type("aws:ec2/vpc:Vpc")
    if len(logs) < len(vpcs):
        yield Violation("(network)", f"{len(vpcs)} VPC(s) but {len(logs)} flow log(s)")


@rule("subnets-no-public-ip", "mandatory", "No subnet gives instances a public IP on launch.",
      "AWS FSBP EC2.15; the seeds' private subnets: nodes and data stores are reached through the load balancer only.")
def subnets_no_public_ip(view):
    for s in view.of_type(SUBNET):
        if s.props.get("mapPublicIpOnLaunch"):
            yield Violation(s.name, "mapPublicIpOnLaunch is true")


@rule("vpc-prod-multi-az", "mandatory", "Prod spans 3 availability zones, with a NAT gateway in each.",
      "The seeds' prod: redundancy across multiple availability zones; one NAT gateway would make a zone's loss "
      "everyone's loss of egress.")
def vpc_prod_multi_az(view):
    if not view.prod:
        return
    tiers: dict[str, set] = {}
    for s in view.of_type(SUBNET):
        tiers.setdefault((s.props.get("tags") or {}).get("tier", "?"), set()).add(s.props.get("availabilityZone"))
    for tier, zones in sorted(tiers.items()):
        if len(zones) < PROD_ZONES:
            yield Violation(f"{tier} subnets", f"in {len(zones)} zone(s) (< {PROD_ZONES}) in prod")
    nats = view.of_type("aws:ec2/natGateway:NatGateway")
    private_zones = tiers.get("private", set())
    if len(nats) < len(private_zones):
        yield Violation("(network)", f"{len(nats)} NAT gateway(s) for {len(private_zones)} zones in prod")


RULES = [
    eks_private_endpoint,
    eks_logs_and_secrets,
    eks_prod_nodes_multi_az,
    imdsv2_required,
    sg_no_world_ingress,
    vpc_default_sg_closed,
    vpc_flow_logs,
    subnets_no_public_ip,
    vpc_prod_multi_az,
]
