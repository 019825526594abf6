"""The ledger's entries and its current pointer (the models; ledger.py reads and writes them).

An operation on an environment (a promotion, a rollback) writes several entries, all with its operation id:
`started` (which release, what ran before, from which environment, what it rolls back and why), a `gate`
per verdict, an `approval` per approval, a `step` per change it made (backup, migrations, each service's
rollout, smoke tests, the analysis), and one `outcome` saying what the environment runs afterwards. The
pointer (releases/ledger/current.json) is the fold of every entry: the last sequence number and the
release the environment runs, from the last outcome that changed it.
"""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Annotated, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, RootModel, field_validator

from .record import ID_PATTERN

OPERATION_ID = r"^op-[0-9]{8}T[0-9]{6}Z-[0-9a-f]{6}$"
ReleaseId = Annotated[str, Field(pattern=ID_PATTERN)]
Text = Annotated[str, Field(max_length=2000)]


def new_operation_id(at: dt.datetime) -> str:
    return f"op-{at.astimezone(dt.timezone.utc):%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    seq: int = Field(ge=1, description="its place in the ledger: entry N is releases/ledger/<N, 10 digits>.json")
    at: dt.datetime
    by: str = Field(min_length=1, max_length=200, description="user@host")
    operation: str = Field(pattern=OPERATION_ID, description="the promotion or rollback it belongs to")

    @field_validator("at")
    @classmethod
    def _aware(cls, v: dt.datetime) -> dt.datetime:
        if v.tzinfo is None:
            raise ValueError("must carry a UTC offset")
        return v.astimezone(dt.timezone.utc)

    def summary(self) -> str:
        return self.kind  # type: ignore[attr-defined]


class Started(_Entry):
    kind: Literal["started"] = "started"
    action: Literal["promote", "rollback"]
    release: ReleaseId
    previous: ReleaseId | None = Field(None, description="what the environment ran when it started")
    source_env: str | None = Field(None, description="promote --from: the environment the release came from")
    services: list[str] = Field(default_factory=list, description="the services it changes; empty: all")
    rolls_back: str | None = Field(None, pattern=OPERATION_ID, description="a rollback: the operation it undoes")
    automatic: bool = Field(False, description="a rollback started by a failed promotion, not by a person")
    cause: Text | None = Field(None, description="a rollback: why")

    def summary(self) -> str:
        verb = "automatic rollback" if self.automatic else self.action
        parts = [f"{verb} to {self.release}", f"from {self.previous}" if self.previous else "from nothing recorded"]
        if self.source_env:
            parts.append(f"(as {self.source_env} runs it)")
        if self.rolls_back:
            parts.append(f"undoing {self.rolls_back}")
        if self.cause:
            parts.append(f"because {self.cause}")
        return " ".join(parts)


class Gate(_Entry):
    kind: Literal["gate"] = "gate"
    gate: str = Field(min_length=1, max_length=100)
    verdict: Literal["pass", "fail", "inconclusive", "overridden", "skipped"]
    detail: Text = ""
    override_reason: Text | None = None

    def summary(self) -> str:
        text = f"gate {self.gate}: {self.verdict}" + (f" ({self.detail})" if self.detail else "")
        return text + (f", overridden: {self.override_reason}" if self.override_reason else "")


class Approval(_Entry):
    kind: Literal["approval"] = "approval"
    approver: str = Field(min_length=1, max_length=200)
    via: Literal["interactive", "ci"]
    reference: Text | None = Field(None, description="the CI's approval (a run URL, an environment approval)")

    def summary(self) -> str:
        return f"approved by {self.approver} ({self.via}" + (f": {self.reference})" if self.reference else ")")


class Step(_Entry):
    kind: Literal["step"] = "step"
    step: str = Field(min_length=1, max_length=100, description="backup, migrate, rollout:<service>, smoke, analysis")
    outcome: Literal["ok", "failed"]
    detail: Text = ""

    def summary(self) -> str:
        return f"{self.step}: {self.outcome}" + (f" ({self.detail})" if self.detail else "")


class Outcome(_Entry):
    kind: Literal["outcome"] = "outcome"
    result: Literal["succeeded", "failed", "refused", "rolled-back", "abandoned"]
    running: ReleaseId | None = Field(None, description="what the environment runs afterwards (None: unknown)")
    cause: Text | None = None

    def summary(self) -> str:
        text = f"{self.result}" + (f", running {self.running}" if self.running else "")
        return text + (f": {self.cause}" if self.cause else "")


Entry = Union[Started, Gate, Approval, Step, Outcome]
KINDS = {m.model_fields["kind"].default: m for m in (Started, Gate, Approval, Step, Outcome)}


class EntryDocument(RootModel[Annotated[Entry, Field(discriminator="kind")]]):
    """One entry as stored, whichever its kind."""


class Pointer(BaseModel):
    """releases/ledger/current.json: the ledger's head and the release the environment runs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    seq: int = Field(ge=0, description="the last entry folded in (0: none)")
    release: ReleaseId | None = Field(None, description="what the environment runs (None: nothing recorded yet)")
    since: int | None = Field(None, ge=1, description="the outcome entry that made it current")
    operation: str | None = Field(None, pattern=OPERATION_ID)
    updated_at: dt.datetime | None = None


def fold(pointer: Pointer, entries: list[Entry], at: dt.datetime) -> Pointer:
    """The pointer after entries (the ones following pointer.seq, in order)."""
    state = pointer.model_dump()
    for entry in entries:
        if entry.seq != state["seq"] + 1:
            raise ValueError(f"entry {entry.seq} does not follow entry {state['seq']}")
        state["seq"] = entry.seq
        if isinstance(entry, Outcome) and entry.running and entry.running != state["release"]:
            state |= {"release": entry.running, "since": entry.seq, "operation": entry.operation}
    return Pointer(**{**state, "updated_at": at})
