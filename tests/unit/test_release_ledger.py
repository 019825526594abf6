"""The ledger and the lock over a fake bucket with S3's conditional writes: sequence numbers, the pointer's
fold, conflicts named, damaged objects named, the lock's refusals, stale takeover (audited) and release."""

from __future__ import annotations

import json

import pytest
from fakes import FakeStore, WallClock

from taly_ops.operations.releases.entries import Gate, Outcome, Pointer, Started, Step, fold
from taly_ops.operations.releases.ledger import POINTER, Ledger, LedgerConflict
from taly_ops.operations.releases.lock import LOCK, EnvironmentLock, LockHeld, LockLost
from taly_ops.operations.releases.stored import Damaged

R1, R2 = "rel-20260301T120000Z-0000aaaa", "rel-20260302T120000Z-0000bbbb"
OP1, OP2 = "op-20260301T120000Z-000001", "op-20260302T120000Z-000002"


def ledger(store: FakeStore | None = None, by: str = "ana@laptop") -> Ledger:
    return Ledger(store if store is not None else FakeStore(), "staging", WallClock(), by)


def promote(led: Ledger, release: str, operation: str, result: str = "succeeded") -> None:
    """The entries a promotion writes, as the promote helper will."""
    led.append(Started, operation=operation, action="promote", release=release, previous=led.current().release)
    led.append(Gate, operation=operation, gate="target-healthy", verdict="pass")
    led.append(Step, operation=operation, step="rollout:auth", outcome="ok" if result == "succeeded" else "failed")
    running = release if result == "succeeded" else led.current().release
    led.append(Outcome, operation=operation, result=result, running=running)


def test_entries_are_numbered_and_the_pointer_follows_what_runs():
    store = FakeStore()
    led = ledger(store)
    promote(led, R1, OP1)
    promote(led, R2, OP2, result="rolled-back")
    assert sorted(k for k in store.objects if k.startswith("releases/ledger/")) == [
        f"releases/ledger/{n:010d}.json" for n in range(1, 9)]
    pointer = Pointer.model_validate_json(store.objects[POINTER])
    assert (pointer.seq, pointer.release, pointer.since, pointer.operation) == (8, R1, 4, OP1)
    history = led.history()
    assert [e.seq for e in history.entries] == list(range(1, 9)) and history.damaged == []
    assert history.entries[4].summary() == f"promote to {R2} from {R1}"
    assert [e.seq for e in led.history(limit=3).entries] == [6, 7, 8]


def test_a_taken_number_is_stepped_over_unless_the_writer_said_what_it_follows():
    store = FakeStore()
    first, second = ledger(store, "ana@laptop"), ledger(store, "bo@ci-runner")
    first.append(Started, operation=OP1, action="promote", release=R1)
    # bo read the ledger at entry 1 and decides from it; ana appends meanwhile
    first.append(Gate, operation=OP1, gate="freeze", verdict="pass")
    with pytest.raises(LedgerConflict, match=r"entry 2 of the staging ledger was written meanwhile: gate by ana@laptop"):
        second.append(Started, after=1, operation=OP2, action="promote", release=R2)
    entry = second.append(Started, operation=OP2, action="promote", release=R2)  # not bound to entry 1: takes 3
    assert entry.seq == 3 and Pointer.model_validate_json(store.objects[POINTER]).seq == 3
    with pytest.raises(LedgerConflict, match="has no entry 9 to follow"):
        second.append(Gate, after=9, operation=OP2, gate="x", verdict="pass")


def test_a_pointer_left_behind_by_a_dead_writer_is_caught_up():
    store = FakeStore()
    led = ledger(store)
    promote(led, R1, OP1)
    # a writer died after writing entry 5 and before moving the pointer
    dead = Outcome(seq=5, at=WallClock()(), by="x@y", operation=OP2, result="succeeded", running=R2)
    store.objects[led.key(5)] = dead.model_dump_json().encode()
    assert Pointer.model_validate_json(store.objects[POINTER]).seq == 4
    assert led.current().release == R2
    assert led.append(Gate, operation=OP2, gate="g", verdict="pass").seq == 6
    assert Pointer.model_validate_json(store.objects[POINTER]).model_dump(include={"seq", "release", "since"}) == \
        {"seq": 6, "release": R2, "since": 5}


@pytest.mark.parametrize("body,reason", [
    (b"{\"seq\": 2, \"kind\": \"gate\"", "not JSON"),
    (b"\xff\x00", "not UTF-8"),
    (json.dumps({"seq": 2, "kind": "promotion"}).encode(), "does not match any of the expected tags"),
    (json.dumps({"seq": 2, "kind": "gate", "at": "2026-03-01T12:00:00Z", "by": "a@b", "operation": OP1,
                 "gate": "g", "verdict": "maybe"}).encode(), "verdict"),
])
def test_a_damaged_entry_is_named_and_the_rest_of_the_history_kept(body, reason):
    store = FakeStore()
    led = ledger(store)
    promote(led, R1, OP1)
    store.objects[led.key(2)] = body
    history = led.history()
    assert [e.seq for e in history.entries] == [1, 3, 4]
    assert [(d.key, reason in d.reason) for d in history.damaged] == [("releases/ledger/0000000002.json", True)]
    with pytest.raises(Damaged, match=r"s3://taly-local-backups/releases/ledger/0000000002.json is damaged"):
        led.entry(2)


def test_gaps_stray_objects_a_misplaced_entry_and_a_damaged_pointer_are_named():
    store = FakeStore()
    led = ledger(store)
    promote(led, R1, OP1)
    store.objects[led.key(3)] = store.objects.pop(led.key(2))  # entry 2 stored as 3: a gap and a misplaced entry
    store.objects["releases/ledger/notes.json"] = b"{}"
    store.objects[POINTER] = b"[]"
    history = led.history()
    assert {d.key: d.reason for d in history.damaged} == {
        "releases/ledger/0000000002.json": "missing: the ledger has a gap here",
        "releases/ledger/0000000003.json": "it says it is entry 2",
        "releases/ledger/notes.json": "not a ledger entry's name (releases/ledger/<10 digits>.json)",
        "releases/current.json": "Input should be a valid dictionary or instance of Pointer",
    }
    assert history.pointer is None
    with pytest.raises(Damaged, match="current.json is damaged"):
        led.append(Gate, operation=OP1, gate="g", verdict="pass")


def test_fold_takes_what_runs_from_outcomes_only():
    at = WallClock()()
    entries = [Started(seq=1, at=at, by="a@b", operation=OP1, action="promote", release=R1),
               Outcome(seq=2, at=at, by="a@b", operation=OP1, result="failed", running=None),
               Outcome(seq=3, at=at, by="a@b", operation=OP1, result="succeeded", running=R1)]
    assert fold(Pointer(seq=0), entries[:2], at).release is None
    assert fold(Pointer(seq=0), entries, at).model_dump(include={"seq", "release", "since"}) == \
        {"seq": 3, "release": R1, "since": 3}
    with pytest.raises(ValueError, match="does not follow"):
        fold(Pointer(seq=0), entries[1:], at)


# --- the lock -----------------------------------------------------------------------------------------------------

def locks(tmp_path, store: FakeStore, clock: WallClock) -> tuple[EnvironmentLock, EnvironmentLock]:
    return (EnvironmentLock(store, "staging", tmp_path / "ana", clock, 120, "ana@laptop"),
            EnvironmentLock(store, "staging", tmp_path / "bo", clock, 120, "bo@ci-runner"))


def test_a_held_lock_refuses_a_second_holder_naming_the_holder_and_its_age(tmp_path):
    store, clock = FakeStore(), WallClock()
    ana, bo = locks(tmp_path, store, clock)
    held = ana.acquire("promote rel-x to staging")
    clock.advance(200)
    assert held.beat()
    clock.advance(30)
    with pytest.raises(LockHeld, match=r"held by ana@laptop \(pid \d+\) for 'promote rel-x to staging': taken "
                                       r"3m50s ago .* last heartbeat 30s ago$"):
        bo.acquire("promote rel-y to staging", take_over_stale=True)  # not stale: the flag changes nothing
    assert held.release() and LOCK not in store.objects
    assert bo.acquire("promote rel-y to staging").record.holder == "bo@ci-runner"


def test_a_stale_lock_is_taken_over_only_when_asked_and_audited(tmp_path):
    store, clock = FakeStore(), WallClock()
    ana, bo = locks(tmp_path, store, clock)
    held = ana.acquire("promote rel-x to staging")
    clock.advance(121)
    with pytest.raises(LockHeld, match=r"last heartbeat 2m01s ago, stale \(TTL 120s\)") as refused:
        bo.acquire("rollback staging")
    assert "take it over explicitly" in refused.value.hint
    assert not (tmp_path / "bo" / "audit.log").exists()
    taken = bo.acquire("rollback staging", take_over_stale=True)
    [line] = [json.loads(x) for x in (tmp_path / "bo" / "audit.log").read_text().splitlines()]
    assert (line["what"], line["outcome"], line["environment"]) == ("release.lock.takeover", "taken-over", "staging")
    assert line["before"]["holder"]["holder"] == "ana@laptop" and line["before"]["stale"] is True
    assert line["after"]["holder"] == "bo@ci-runner"
    # the old holder finds out at its next heartbeat, and never removes the new holder's lock
    assert held.beat() is False
    with pytest.raises(LockLost, match="no longer ours"):
        held.check()
    assert held.release() is False and json.loads(store.objects[LOCK])["holder"] == "bo@ci-runner"
    assert taken.release() is True and LOCK not in store.objects


def test_a_damaged_lock_is_named_and_taken_over_only_when_stale_and_asked(tmp_path):
    store, clock = FakeStore({LOCK: b"{\"holder\": "}), WallClock()
    store.modified[LOCK] = clock()
    ana, _ = locks(tmp_path, store, clock)
    with pytest.raises(LockHeld, match=r"lock \(releases/lock.json\) is damaged \(not JSON .*\); it was last written 0s"):
        ana.acquire("promote", take_over_stale=True)
    clock.advance(500)
    assert ana.status().stale
    assert ana.acquire("promote", take_over_stale=True).record.holder == "ana@laptop"
