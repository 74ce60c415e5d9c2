"""`safety-net audit verify`: every link, every entry's hash, every checkpoint.

It remembers the last checkpoint it accepted (a small state file kept by the auditor) and rejects
a later run whose checkpoints are smaller or disagree — a rolled-back or rewritten log.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from hashlib import sha256
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from app.audit.chain import GENESIS, canonical, raw_select
from app.audit.checkpoints import BadCheckpoint, Checkpoint, check_signature, load_all, public_keys
from app.db import Database
from app.tables.audit import AccessLogEntry
from app.tenancy import SYSTEM

if TYPE_CHECKING:
    from app.access.context import AccessContext

PAGE = 20_000
MAX_PROBLEMS = 20
MAX_FILE_PROBLEMS = 5  # named one by one; room is left for the log's own problems


async def _scan(conn: Any, dialect: str, after: int, until: int | None, heads: dict[int, str],
                progress: Callable[[int, int], None] | None = None,
                total: int = 0, accepted: tuple[int, str] | None = None) -> dict[str, Any]:
    """Check entries with after < seq <= until: gaps, own hashes, links, checkpoint heads."""
    sql = raw_select(dialect) + " WHERE seq > {} " + (f"AND seq <= {int(until)} " if until else "")
    sql += "ORDER BY seq LIMIT " + str(PAGE)
    problems: list[tuple[int | None, str]] = []
    expected, computed, first_prev, last_hash = after, None, None, GENESIS
    rows = (await conn.exec_driver_sql(sql.format(after))).all()
    while rows:
        for row in rows:
            seq, prev_hash, stored_hash = row[0], row[14], row[15]
            if computed is None:
                first_prev = prev_hash
                computed = prev_hash if after else GENESIS
            expected += 1
            if seq != expected:
                span = f"-{seq - 1}" if seq - 1 > expected else ""
                problems.append((expected, f"entry {expected}{span} missing: the sequence has a "
                                           "gap (entries deleted)"))
                expected = seq
            own = sha256(canonical(row, prev_hash)).hexdigest()
            if own != stored_hash:
                problems.append((seq, f"entry {seq} does not match its hash (edited)"))
            if prev_hash == computed:
                computed = own  # the common case: one hash per entry
            else:
                problems.append((max(seq - 1, 1), f"entry {seq} does not follow entry {seq - 1}: "
                                                  "one of them was changed, inserted or reordered"))
                computed = sha256(canonical(row, computed)).hexdigest()
            if accepted is not None and seq == accepted[0] and computed != accepted[1]:
                # A restored older backup that has grown past the size accepted before still
                # differs from what was accepted at that size: the rollback stays visible.
                problems.append((seq, f"the log at size {seq} differs from the one accepted "
                                      "before: it was rolled back and regrown, or rewritten"))
            head = heads.get(seq)
            if head is not None and head != computed:
                problems.append((seq, f"checkpoint {seq:012d}.note (size {seq}) contradicts the "
                                      "log: entries up to it were rewritten"))
            last_hash = stored_hash
        if progress:
            progress(expected, total)
        rows = (await conn.exec_driver_sql(sql.format(rows[-1][0]))).all()
    return {"problems": problems, "last_seq": expected, "last_hash": computed or GENESIS,
            "first_prev": first_prev, "stored_last": last_hash}


@dataclass
class Report:
    entries: int = 0
    pending: int = 0
    checkpoints: int = 0
    checkpoint_files: int = 0
    problems: list[str] = field(default_factory=list)
    first_bad_seq: int | None = None
    head: str = GENESIS
    accepted: Checkpoint | None = None

    @property
    def ok(self) -> bool:
        return not self.problems

    def problem(self, message: str, seq: int | None = None) -> None:
        if seq is not None and self.first_bad_seq is None:
            self.first_bad_seq = seq
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(message)


def _load_state(path: Path | None) -> dict[str, object] | None:
    if path is None or not path.exists():
        return None
    return json.loads(path.read_text())  # type: ignore[no-any-return]


async def verify(
    db: Database,
    checkpoint_dir: Path,
    key_dir: Path,
    state_path: Path | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Report:
    report = Report()
    keys = public_keys(key_dir)
    # Every file, not the `latest` pointer: a file that is not a checkpoint is a problem of its
    # own and the others are still checked.
    checkpoints, unreadable = load_all(checkpoint_dir)
    report.checkpoint_files = len(checkpoints) + len(unreadable)
    for bad in unreadable[:MAX_FILE_PROBLEMS]:
        report.problem(str(bad))
    if len(unreadable) > MAX_FILE_PROBLEMS:
        report.problem(f"... and {len(unreadable) - MAX_FILE_PROBLEMS} more files in "
                       f"{checkpoint_dir} that are not valid checkpoints")
    valid: dict[int, Checkpoint] = {}
    for cp in checkpoints:
        try:
            check_signature(cp, keys)
            valid[cp.size] = cp
        except BadCheckpoint as exc:
            report.problem(str(exc))
    report.checkpoints = len(valid)
    state = _load_state(state_path)
    if state is not None:
        size, head = int(state["size"]), str(state["head"])  # type: ignore[call-overload]
        newest = max(valid, default=0)
        if newest < size:
            report.problem(f"checkpoints go back to size {newest}, but size {size} was accepted "
                           "before: the log or its checkpoints were rolled back")
        elif size in valid and valid[size].head != head:
            report.problem(f"the checkpoint at size {size} differs from the one accepted before: "
                           "checkpoints were rewritten")

    db = db.system  # the whole log, by its operator: the background role's connection
    async with db.engine.connect() as conn:
        await db.declare(conn, SYSTEM)
        total = int(await conn.scalar(select(func.count()).select_from(AccessLogEntry)
                                      .where(AccessLogEntry.seq.is_not(None))) or 0)
        report.pending = int(await conn.scalar(select(func.count()).select_from(AccessLogEntry)
                                               .where(AccessLogEntry.seq.is_(None))) or 0)
    heads = {size: cp.head for size, cp in valid.items()}
    async with db.engine.connect() as conn:
        await db.declare(conn, SYSTEM)
        part = await _scan(conn, db.dialect, 0, None, heads, progress, total,
                           accepted=(int(state["size"]), str(state["head"]))  # type: ignore[call-overload]
                           if state is not None else None)
    for seq, message in part["problems"]:
        report.problem(message, seq)
    report.entries, computed = part["last_seq"], part["last_hash"]
    report.head = computed
    beyond = [s for s in valid if s > report.entries]
    if beyond:
        report.problem(f"the log has {report.entries} entries but checkpoint size {max(beyond)} "
                       "was signed: its tail was truncated", report.entries + 1)
    if report.ok and valid:
        newest_cp: Checkpoint = valid[max(valid)]
        report.accepted = newest_cp
        if state_path is not None:
            _save_state(state_path, newest_cp)
    return report


def _save_state(path: Path, cp: Checkpoint) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"size": cp.size, "head": cp.head}))


def verify_export(path: Path, key_dir: Path) -> Report:
    """Check an exported JSON Lines file offline: its checkpoint's signature, every exported
    entry's hash, and that the chain through entries and stubs reaches the signed head."""
    from app.audit.checkpoints import parse
    from app.audit.http import FIELDS as EXPORT_FIELDS
    from app.db import canonical_json

    report = Report()
    lines = path.read_text(encoding="utf-8").splitlines()
    if not lines:
        report.problem("empty export")
        return report
    try:
        cp = parse(json.loads(lines[0])["note"])
        check_signature(cp, public_keys(key_dir))
        report.checkpoints = 1
    except (BadCheckpoint, KeyError, ValueError) as exc:
        report.problem(f"checkpoint: {exc}")
        return report
    running: str | None = None
    expected: int | None = None
    for raw in lines[1:]:
        item = json.loads(raw)
        seq = int(item["seq"])
        if expected is not None and seq != expected:
            report.problem(f"export skips from {expected} to {seq}", expected)
        if running is not None and item["prev_hash"] != running:
            report.problem(f"entry {seq} does not follow entry {seq - 1}", seq)
        if item["type"] == "entry":
            stored = [item[f] for f in EXPORT_FIELDS[:12]]
            stored += [canonical_json(item["details"]), item["refs"]]
            if sha256(canonical(stored, item["prev_hash"])).hexdigest() != item["hash"]:
                report.problem(f"entry {seq} does not match its hash (edited)", seq)
            report.entries += 1
        running, expected = item["hash"], seq + 1
    if expected is None or expected - 1 != cp.size or running != cp.head:
        report.problem(f"the export does not reach the signed head at size {cp.size}")
    else:
        report.accepted = cp
    report.head = running or GENESIS
    return report


# --- the status shown to auditors (GraphQL `accessLogVerification`, the /audit page) ------------

STATUS_WINDOW = 20_000  # entries recomputed per request: one scan page, bounded work


class ChainState(enum.StrEnum):
    VERIFIED = "verified"
    BROKEN = "broken"
    NO_CHECKPOINT = "no_checkpoint"


@dataclass(frozen=True)
class ChainStatus:
    """The newest signed checkpoint and whether the chain recomputes to its head."""

    state: ChainState
    checkpoint: Checkpoint | None
    checked_from: int  # first entry recomputed (1: from the start of the log)
    checked_through: int  # the checkpoint's size: entries after it are not signed yet
    pending: int  # entries written but not chained yet
    first_bad_seq: int | None
    problems: tuple[str, ...]


async def chain_status(ctx: AccessContext, window: int = STATUS_WINDOW) -> ChainStatus:
    """Check the newest checkpoint's signature and recompute the last `window` entries of the
    chain up to it (the whole log when it is shorter). `safety-net audit verify` remains the
    complete check: every entry and every checkpoint file, with the auditor's own state."""
    import asyncio

    from app import tenancy
    from app.audit import checkpoints as files

    await ctx.require("audit_log", "read")
    if ctx.checkpoint_dirs is None:
        raise RuntimeError("the access context was built without the checkpoint directories")
    note_dir, key_dir = ctx.checkpoint_dirs
    cp = await asyncio.to_thread(files.latest, note_dir)
    problems: list[str] = []
    first_bad: int | None = None
    # Every entry of the log, whichever organisation: only counts and sequence numbers leave.
    with tenancy.using(tenancy.SYSTEM):
        async with ctx.db.transaction() as session:
            conn = await session.connection()
            pending = int(await conn.scalar(select(func.count()).select_from(AccessLogEntry)
                                            .where(AccessLogEntry.seq.is_(None))) or 0)
            if cp is None:
                ctx.record("audit_log.verify", details={"state": ChainState.NO_CHECKPOINT.value})
                return ChainStatus(ChainState.NO_CHECKPOINT, None, 0, 0, pending, None, ())
            try:
                check_signature(cp, await asyncio.to_thread(public_keys, key_dir))
            except BadCheckpoint:
                problems.append(f"the newest checkpoint (size {cp.size}) is not signed by a "
                                "known key")
                first_bad = cp.size
            after = max(cp.size - window, 0)
            part = await _scan(conn, ctx.db.dialect, after, cp.size, {cp.size: cp.head})
    for seq, message in part["problems"]:
        if len(problems) < MAX_PROBLEMS:
            problems.append(message)
        if first_bad is None or (seq is not None and seq < first_bad):
            first_bad = seq
    if part["last_seq"] < cp.size:
        problems.append(f"the log has {part['last_seq']} entries but checkpoint size {cp.size} "
                        "was signed: its tail was truncated")
        first_bad = part["last_seq"] + 1 if first_bad is None else first_bad
    state = ChainState.BROKEN if problems else ChainState.VERIFIED
    ctx.record("audit_log.verify", details={"state": state.value, "checkpoint": cp.size,
                                            "from": after + 1})
    return ChainStatus(state, cp, after + 1, cp.size, pending, first_bad, tuple(problems))
