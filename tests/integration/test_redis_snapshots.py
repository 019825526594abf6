"""The hourly Redis snapshot function against moto server over HTTP (boto3 unchanged).

The function (platform/taly_platform/functions/redis_snapshots.py) is what the estate deploys as a
Lambda; here it runs in-process against an emulated ElastiCache, hour after hour.
"""

from __future__ import annotations

import datetime as dt

import boto3
import pytest

from taly_platform.functions import redis_snapshots

pytestmark = pytest.mark.integration

T0 = dt.datetime(2026, 12, 1, 5, 30, tzinfo=dt.timezone.utc)


@pytest.fixture(scope="module")
def endpoint(moto_server):
    """The session's moto_server (conftest.py): started by the local estate's own emulator launcher."""
    return moto_server


_groups = iter(range(1, 1000))


@pytest.fixture
def elasticache(endpoint, monkeypatch):
    """A client of the emulator, and a fresh replication group for the test (GROUP)."""
    global GROUP
    for k, v in {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                 "AWS_DEFAULT_REGION": "eu-west-1"}.items():
        monkeypatch.setenv(k, v)
    GROUP = f"taly-dev-redis-{next(_groups)}"
    client = boto3.client("elasticache")
    client.create_replication_group(ReplicationGroupId=GROUP, ReplicationGroupDescription="test", Engine="redis",
                                    CacheNodeType="cache.t4g.small", NumCacheClusters=1)
    return client


def hourly(client) -> list[str]:
    return sorted(s["SnapshotName"] for s in client.describe_snapshots(ReplicationGroupId=GROUP)["Snapshots"]
                  if s["SnapshotName"].startswith(f"{GROUP}-hourly-"))


def test_one_snapshot_an_hour_and_those_past_the_retention_deleted(elasticache):
    for hour in range(6):
        result = redis_snapshots.rotate(elasticache, GROUP, retention_hours=3, now=T0 + dt.timedelta(hours=hour))
        assert result["created"] == f"{GROUP}-hourly-{(T0 + dt.timedelta(hours=hour)):%Y%m%d%H}"
    # At 10:30, the 07:00 snapshot is 3.5 h old: gone; 08:00, 09:00 and 10:00 stay.
    assert hourly(elasticache) == [f"{GROUP}-hourly-20261201{h:02d}" for h in (8, 9, 10)]
    assert result["deleted"] == [f"{GROUP}-hourly-2026120107"] and len(result["kept"]) == 3


def test_a_retried_run_in_the_same_hour_takes_no_second_snapshot(elasticache):
    first = redis_snapshots.rotate(elasticache, GROUP, 48, T0)
    again = redis_snapshots.rotate(elasticache, GROUP, 48, T0 + dt.timedelta(minutes=20))
    assert first["created"] and again["created"] is None
    assert hourly(elasticache) == [first["created"]]


def test_other_snapshots_are_never_touched(elasticache):
    elasticache.create_snapshot(ReplicationGroupId=GROUP, SnapshotName="before-the-upgrade")
    elasticache.create_snapshot(ReplicationGroupId=GROUP, SnapshotName=f"{GROUP}-hourly-not-a-time")
    redis_snapshots.rotate(elasticache, GROUP, 2, T0 + dt.timedelta(days=30))
    names = {s["SnapshotName"] for s in elasticache.describe_snapshots()["Snapshots"]}
    assert {"before-the-upgrade", f"{GROUP}-hourly-not-a-time"} <= names


def test_the_lambda_handler_reads_its_settings_from_the_environment(elasticache, monkeypatch):
    monkeypatch.setenv("REPLICATION_GROUP_ID", GROUP)
    monkeypatch.setenv("RETENTION_HOURS", "48")
    result = redis_snapshots.handler({}, None)
    assert result["replication_group"] == GROUP and result["created"] in hourly(elasticache)
