"""An environment's ledger: an append-only history in its backups bucket.

Entry N is releases/ledger/<N, 10 digits>.json, written with `If-None-Match: *`, so two writers can never
both write entry N: the loser finds N taken and takes N+1 (or, when it said which entry it follows, fails
with LedgerConflict naming who wrote N). releases/current.json is the pointer (entries.Pointer), replaced
only with `If-Match` on the ETag it was read with; it is the fold of the entries, so a writer that lost the
race for it reads it again and folds again. A writer that died between its entry and the pointer leaves the
pointer behind, never wrong: readers fold what follows it, and the next append moves it.

Every object is read back as untrusted input: a damaged entry, a gap or a damaged pointer is named.
"""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from ...errors import VERDICT, TalyError
from .catalogue import READERS, DamagedObject
from .entries import Entry, EntryDocument, Pointer, fold
from .stored import PREFIX, Clock, Damaged, dump, parse, utc_now, who

LEDGER = PREFIX + "ledger/"
POINTER = PREFIX + "current.json"
_KEY = re.compile(r"^" + re.escape(LEDGER) + r"(?P<seq>[0-9]{10})\.json$")
MAX_PROBES = 50           # entries a writer steps over before giving up (others appending all the while)
MAX_POINTER_ATTEMPTS = 20  # re-reads of the pointer before giving up
E = TypeVar("E", bound=Entry)


class LedgerConflict(TalyError):
    """Another writer got there first and the writer said it must follow a given entry (exit 1)."""

    exit_code = VERDICT


@dataclass
class History:
    environment: str
    bucket: str
    pointer: Pointer | None
    entries: list[Entry]
    damaged: list[DamagedObject]
    total: int

    def to_json(self) -> dict[str, Any]:
        return {"environment": self.environment, "ledger": f"s3://{self.bucket}/{LEDGER}",
                "current": self.pointer.model_dump(mode="json") if self.pointer else None,
                "total_entries": self.total, "entries": [{**e.model_dump(mode="json"), "summary": e.summary()} for e in self.entries],
                "damaged": [d.to_json() for d in self.damaged]}


@dataclass
class Ledger:
    store: Any  # adapters.s3_store.Store
    environment: str
    clock: Clock = utc_now
    by: str = field(default_factory=who)

    @staticmethod
    def key(seq: int) -> str:
        return f"{LEDGER}{seq:010d}.json"

    def location(self, key: str) -> str:
        return f"s3://{self.store.bucket}/{key}"

    # --- reading -----------------------------------------------------------------------------------------

    def entry(self, seq: int) -> Entry:
        """Entry seq; KeyError when there is none, Damaged when it cannot be trusted."""
        key = self.key(seq)
        entry = parse(EntryDocument, self.store.get(key).body, self.location(key)).root
        if entry.seq != seq:
            raise Damaged(self.location(key), f"it says it is entry {entry.seq}")
        return entry

    def pointer(self) -> tuple[Pointer, str | None]:
        """The stored pointer and its ETag; (an empty pointer, None) when there is none yet."""
        try:
            blob = self.store.get(POINTER)
        except KeyError:
            return Pointer(seq=0), None
        return parse(Pointer, blob.body, self.location(POINTER)), blob.etag

    def current(self) -> Pointer:
        """The pointer with whatever entries follow it folded in (a writer may have died before moving it)."""
        pointer, _ = self.pointer()
        following = []
        while True:
            try:
                following.append(self.entry(pointer.seq + len(following) + 1))
            except KeyError:
                break
        return fold(pointer, following, self.clock()) if following else pointer

    def history(self, limit: int | None = None) -> History:
        """The last `limit` entries (all: None), oldest first, and every object that cannot be trusted: damaged
        entries, gaps in the sequence, names that are not entries, a damaged pointer."""
        seqs, damaged = [], []
        for obj in self.store.keys(LEDGER):
            if m := _KEY.match(obj["Key"]):
                seqs.append(int(m["seq"]))
            else:
                damaged.append(DamagedObject(obj["Key"], "not a ledger entry's name (releases/ledger/<10 digits>.json)"))
        seqs.sort()
        have = set(seqs)
        damaged += [DamagedObject(self.key(n), "missing: the ledger has a gap here")
                    for n in range(1, seqs[-1] if seqs else 0) if n not in have]
        shown = seqs[-limit:] if limit else seqs

        def one(seq: int) -> Entry | DamagedObject:
            try:
                return self.entry(seq)
            except Damaged as exc:
                return DamagedObject(self.key(seq), exc.reason)
            except KeyError:
                return DamagedObject(self.key(seq), "listed, then gone")

        with ThreadPoolExecutor(max_workers=READERS) as pool:
            read = list(pool.map(one, shown))
        try:
            pointer: Pointer | None = self.current()
        except Damaged as exc:
            pointer = None
            damaged.append(DamagedObject(exc.key, exc.reason))
        return History(self.environment, self.store.bucket, pointer, [e for e in read if not isinstance(e, DamagedObject)],
                       sorted(damaged + [d for d in read if isinstance(d, DamagedObject)], key=lambda d: d.key),
                       len(seqs))

    # --- appending ---------------------------------------------------------------------------------------

    def append(self, kind: type[E], *, after: int | None = None, **fields: Any) -> E:
        """Write one entry of `kind` at the next free sequence number and move the pointer; the entry.

        after=N: the entry must be N+1 (the writer has seen N and decides from it); LedgerConflict, naming
        who wrote N+1, when it is taken. Without it, a taken number is stepped over.
        """
        if after is not None and after > 0:
            try:
                self.entry(after)
            except KeyError:
                raise LedgerConflict(f"the {self.environment} ledger has no entry {after} to follow") from None
        seq = after + 1 if after is not None else self.pointer()[0].seq + 1
        for _ in range(MAX_PROBES):
            entry = kind(seq=seq, at=self.clock(), by=self.by, **fields)
            if self.store.put_new(self.key(seq), dump(entry)) is not None:
                self._advance(seq)
                return entry
            if after is not None:
                raise LedgerConflict(f"entry {seq} of the {self.environment} ledger was written meanwhile: "
                                     f"{self._describe(seq)}", hint="read the ledger again and decide anew")
            seq += 1
        raise LedgerConflict(f"the {self.environment} ledger: {MAX_PROBES} entries were taken while appending")

    def _describe(self, seq: int) -> str:
        try:
            entry = self.entry(seq)
        except (KeyError, Damaged) as exc:
            return f"({exc})"
        return f"{entry.kind} by {entry.by} at {entry.at.isoformat()} ({entry.operation})"

    def _advance(self, upto: int) -> None:
        """Fold the entries up to `upto` into the pointer, replacing it only as read (If-Match)."""
        for _ in range(MAX_POINTER_ATTEMPTS):
            pointer, etag = self.pointer()
            if pointer.seq >= upto:
                return  # a later writer folded this entry in already
            entries = []
            for n in range(pointer.seq + 1, upto + 1):
                try:
                    entries.append(self.entry(n))
                except KeyError:
                    raise Damaged(self.location(self.key(n)), "missing: the ledger has a gap here") from None
            body = dump(fold(pointer, entries, self.clock()))
            written = (self.store.put_new(POINTER, body) if etag is None
                       else self.store.put_if_match(POINTER, body, etag))
            if written is not None:
                return
        raise LedgerConflict(f"the {self.environment} ledger's pointer changed {MAX_POINTER_ATTEMPTS} times "
                             f"while entry {upto} was folded in", hint="too many writers at once; retry")
