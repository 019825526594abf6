"""The release record, what it is made of (images file, chart, configuration revision, migrations) and the
catalogue, over a fake bucket: pure logic, every refusal one line naming what is wrong."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from fakes import FakeStore, WallClock

from taly_ops.errors import BadInput
from taly_ops.operations.releases import sources
from taly_ops.operations.releases.catalogue import Catalogue, ReleaseExists
from taly_ops.operations.releases.record import Chart, Database, Migration, Release, check_id
from taly_ops.operations.releases.stored import Damaged
from taly_platform.catalog import SERVICE_NAMES

REGISTRY = "123456789012.dkr.ecr.eu-west-1.amazonaws.com"


def ref(service: str, tag: str = "1.4.2", fill: str = "a") -> str:
    return f"{REGISTRY}/taly/{service}:{tag}@sha256:{fill * 64}"


def images(**changes: str) -> dict[str, str]:
    return {s: changes.get(s.replace("-", "_"), ref(s)) for s in SERVICE_NAMES}


DATABASE = Database(schema_version="20260101000000_add_tags",
                    migrations=[Migration(id="0_init", checksum="1" * 64),
                                Migration(id="20260101000000_add_tags", checksum="2" * 64)])
CHART = Chart(name="taly-service", version="0.1.0")
REVISION = "sha256:" + "c" * 64


def release(clock: WallClock | None = None, **changes: str) -> Release:
    return Release.make(images(**changes), CHART, REVISION, DATABASE, created_at=(clock or WallClock())(),
                        created_by="ana@laptop")


# --- the record -------------------------------------------------------------------------------------------------

def test_a_release_id_sorts_by_time_and_ends_in_its_content_digest():
    clock = WallClock()
    first = release(clock)
    clock.advance(1)
    second = release(clock, auth=ref("auth", fill="b"))
    assert first.id == "rel-20260301T120000Z-" + first.content_digest.removeprefix("sha256:")[:8]
    assert sorted([second.id, first.id]) == [first.id, second.id]
    assert first.content_digest != second.content_digest
    assert Release.model_validate_json(first.model_dump_json()) == first  # what is written reads back equal


def test_the_digest_covers_images_chart_configuration_and_database_not_who_or_when():
    a = release()
    b = Release.make(images(), CHART, REVISION, DATABASE, created_at=WallClock()(), created_by="bo@ci")
    assert a.content_digest == b.content_digest
    for other in (Release.make(images(), Chart(name="taly-service", version="0.2.0"), REVISION, DATABASE,
                               created_at=WallClock()(), created_by="x"),
                  Release.make(images(), CHART, "sha256:" + "d" * 64, DATABASE, created_at=WallClock()(), created_by="x"),
                  Release.make(images(), CHART, REVISION, Database(schema_version="0_init", migrations=DATABASE.migrations[:1]),
                               created_at=WallClock()(), created_by="x")):
        assert other.content_digest != a.content_digest


@pytest.mark.parametrize("reference,expect", [
    (f"{REGISTRY}/taly/auth:1.4.2", "auth: image '.*auth:1.4.2' is not pinned by digest"),
    (f"{REGISTRY}/taly/auth:1.4.2@sha256:abc", "auth: image .* the digest must be @sha256: and 64 lower-case hex"),
    (f"{REGISTRY}/taly/auth:1.4.2@sha512:{'a' * 128}", "the digest must be @sha256:"),
    (f"{REGISTRY}/taly/users:1.4.2@sha256:{'a' * 64}", "is the image of 'users', not of 'auth'"),
    (f"{REGISTRY}/auth:1.4.2@sha256:{'a' * 64}", "is not of the form <registry>/taly/<service>:<tag>@sha256"),
    (f"{REGISTRY}/taly/auth@sha256:{'a' * 64}", "is not of the form"),
])
def test_an_image_not_pinned_by_digest_is_refused_naming_the_service(reference, expect):
    with pytest.raises(BadInput, match=expect):
        release(auth=reference)


@pytest.mark.parametrize("edit,reason", [
    (lambda d: d["images"].update(auth=ref("auth", fill="f")), "does not match its content_digest"),
    (lambda d: d.update(id=d["id"][:-1] + "0"), "its id does not match"),
    (lambda d: d.update(created_at="2026-03-01T12:00:01Z"), "its id does not match"),
    (lambda d: d["database"].update(schema_version="0_init"), "schema_version must be the last migration's id"),
    (lambda d: d["database"]["migrations"].reverse(), "migrations must be in order"),
    (lambda d: d.update(unexpected=1), "Extra inputs are not permitted"),
])
def test_an_edited_record_is_refused(edit, reason):
    data = release().to_json()
    edit(data)
    with pytest.raises(ValueError, match=reason):
        Release.model_validate(data)


def test_a_release_id_typed_by_a_person_is_checked():
    assert check_id("rel-20260301T120000Z-0123abcd")
    with pytest.raises(BadInput, match="is not a release id"):
        check_id("../../etc/passwd")


# --- what a release is made of ----------------------------------------------------------------------------------

def write(tmp_path: Path, text: str, name: str = "images.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_the_images_file_is_yaml_or_json(tmp_path):
    as_yaml = write(tmp_path, "".join(f"{s}: {ref(s)}\n" for s in SERVICE_NAMES))
    as_json = write(tmp_path, json.dumps(images()), "images.json")
    assert sources.read_images(as_yaml, SERVICE_NAMES) == sources.read_images(as_json, SERVICE_NAMES) == images()


@pytest.mark.parametrize("text,expect", [
    ("auth: [1\n", r"images file .*images.yaml:\d+: broken YAML"),
    ("- auth\n", "expected a mapping of service -> image"),
    ("", "expected a mapping of service -> image"),
    ("auth: x\nauth: y\n", "key 'auth' is given twice"),
    (f"api-gateway: {ref('api-gateway')}\nbilling: {ref('billing')}\n", r"images.yaml:2: 'billing' is not a service"),
    (f"api-gateway: {ref('api-gateway')}\nauth: {REGISTRY}/taly/auth:1.4.2\n",
     r"images.yaml:2: auth: image .* is not pinned by digest"),
    (f"auth: 3\n", r"images.yaml:1: auth: expected an image reference .* got int"),
    (f"auth: {ref('auth')}\n", "no image for api-gateway, content"),
])
def test_a_bad_images_file_is_one_line_naming_the_problem(tmp_path, text, expect):
    with pytest.raises(BadInput, match=expect) as caught:
        sources.read_images(write(tmp_path, text), SERVICE_NAMES)
    assert "\n" not in caught.value.message


def test_a_partial_images_file_is_allowed_over_a_base_release(tmp_path):
    assert sources.read_images(write(tmp_path, f"auth: {ref('auth')}\n"), SERVICE_NAMES, partial=True) == {"auth": ref("auth")}


@pytest.mark.parametrize("make,expect", [
    (lambda p: p, "no such file"),
    (lambda p: (p.mkdir(), p)[1], "is a directory"),
    (lambda p: (p.write_bytes(b"\x00\x01"), p)[1], "is a binary file"),
])
def test_an_images_path_that_is_no_file_is_refused(tmp_path, make, expect):
    with pytest.raises(BadInput, match=expect):
        sources.read_images(make(tmp_path / "images.yaml"), SERVICE_NAMES)


def test_migrations_are_read_in_prismas_order_with_their_checksums(tmp_path):
    for name, sql in [("20260201000000_b", "B"), ("0_init", ""), ("20260101000000_a", "A")]:
        (tmp_path / name).mkdir()
        (tmp_path / name / "migration.sql").write_text(sql)
    (tmp_path / "migration_lock.toml").write_text('provider = "postgresql"\n')
    db = sources.read_migrations(tmp_path)
    assert [m.id for m in db.migrations] == ["0_init", "20260101000000_a", "20260201000000_b"]
    assert db.schema_version == "20260201000000_b"
    assert db.migrations[1].checksum == "559aead08264d5795d3909718cdd05abd49572e84fe55590eef31a88a08fdffd"  # sha256("A")


@pytest.mark.parametrize("name,file,expect", [
    ("add-tags", "migration.sql", "not a migration directory name"),
    ("20260101000000_a", "up.sql", "holds no migration.sql"),
])
def test_a_bad_migrations_directory_is_refused(tmp_path, name, file, expect):
    (tmp_path / name).mkdir()
    (tmp_path / name / file).write_text("SELECT 1;")
    with pytest.raises(BadInput, match=expect):
        sources.read_migrations(tmp_path)
    with pytest.raises(BadInput, match="no migrations directory"):
        sources.read_migrations(tmp_path / "absent")


def test_the_shipped_chart_and_migrations_make_a_release(project_root):
    chart = sources.read_chart(project_root)
    assert chart.name == "taly-service" and chart.version
    assert sources.read_migrations(project_root / "migrations").schema_version == "0_init"


def test_the_configuration_revision_follows_the_chart_but_not_its_readme(tmp_path, project_root):
    shutil.copytree(project_root / "charts", tmp_path / "charts")
    before = sources.config_revision(tmp_path)
    (tmp_path / sources.CHART_DIR / "README.md").write_text("new words\n")
    assert sources.config_revision(tmp_path) == before
    values = tmp_path / sources.CHART_DIR / "services" / "auth.yaml"
    values.write_text(values.read_text() + "# a comment is a change\n")
    assert sources.config_revision(tmp_path) != before


# --- the catalogue ------------------------------------------------------------------------------------------------

def test_a_release_is_written_once_and_never_overwritten():
    store = FakeStore()
    catalogue = Catalogue(store, "dev")
    r = release()
    assert catalogue.put(r) is True
    assert catalogue.put(r) is False  # the very same record: nothing to do
    forged = r.model_copy(update={"created_by": "mallory@elsewhere"})
    assert catalogue.put(forged) is False  # same content: the record there stays as written
    stored = store.objects[catalogue.key(r.id)]
    other = Release.model_validate({**release(auth=ref("auth", fill="e")).to_json()})
    clash = Release.model_construct(**{**other.__dict__, "id": r.id})  # another content under the same id
    with pytest.raises(ReleaseExists, match="already holds a release with other content"):
        catalogue.put(clash)
    assert store.objects[catalogue.key(r.id)] == stored
    assert catalogue.get(r.id) == r


def test_damaged_records_are_named_and_the_others_listed():
    store = FakeStore()
    catalogue = Catalogue(store, "dev")
    clock = WallClock()
    good = release(clock)
    clock.advance(60)
    edited = release(clock, auth=ref("auth", fill="b"))
    catalogue.put(good)
    catalogue.put(edited)
    data = json.loads(store.objects[catalogue.key(edited.id)])
    data["images"]["auth"] = ref("auth", fill="c")  # an image swapped behind the record's back
    store.objects[catalogue.key(edited.id)] = json.dumps(data).encode()
    store.objects["releases/catalogue/notes.txt"] = b"hello"
    ids, strays = catalogue.ids()
    assert ids == [good.id, edited.id]
    assert [s.key for s in strays] == ["releases/catalogue/notes.txt"]
    releases, damaged = catalogue.read(ids)
    assert releases == [good]
    assert [d.key for d in damaged] == [catalogue.key(edited.id)]
    assert "does not match its content_digest" in damaged[0].reason
    with pytest.raises(Damaged, match=rf"s3://taly-local-backups/releases/catalogue/{edited.id}.json is damaged"):
        catalogue.get(edited.id)
    store.objects[catalogue.key(good.id)] = b"\xff\xfe"
    with pytest.raises(Damaged, match="not UTF-8"):
        catalogue.get(good.id)


def test_a_record_under_another_id_is_damaged():
    store = FakeStore()
    catalogue = Catalogue(store, "dev")
    r = release()
    store.objects[catalogue.key("rel-20990101T000000Z-00000000")] = r.model_dump_json().encode()
    with pytest.raises(Damaged, match=f"it holds release {r.id}"):
        catalogue.get("rel-20990101T000000Z-00000000")
    with pytest.raises(BadInput, match="no release rel-20990102T000000Z-00000000 in the dev catalogue"):
        catalogue.get("rel-20990102T000000Z-00000000")
