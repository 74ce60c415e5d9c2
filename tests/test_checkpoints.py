"""Checkpoint files that stay cheap and survive crashes: the `latest` pointer (a worker pass reads
O(1) files among 100,000), the minimum interval, durable atomic writes, racing writers on a
shared directory, and files cut short by a power cut (docs/decisions/0009)."""

from __future__ import annotations

import contextlib
import itertools
import logging
import multiprocessing
import os
import random
import signal
import sys
import threading
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from sqlalchemy import insert

from app import tenancy
from app.audit import chain, checkpoints
from app.audit.checkpoints import Checkpoint, note_name
from app.clock import FrozenClock
from app.config import Settings
from app.tables.audit import AccessLogEntry
from tests.test_audit import DENIED, fresh, rehash_everything, run_verify, tamper

pytestmark = pytest.mark.anyio

T0 = datetime(2030, 1, 1, tzinfo=UTC)


def signed(signer: checkpoints.Signer, size: int, minutes: int = 0) -> Checkpoint:
    return signer.sign(size, f"{size:064x}", T0 + timedelta(minutes=minutes))


@pytest.fixture
def signer(tmp_path: Path) -> checkpoints.Signer:
    return checkpoints.Signer(tmp_path / "keys")


def pointer(directory: Path) -> str:
    return (directory / checkpoints.POINTER).read_text()


class FileAccess:
    """Records, while entered, the files opened and the directories listed under one directory,
    and in which threads. Through a Python audit hook (PEP 578: `open`, `io.open`, `os.open` and
    `Path.read_*` raise "open"; `os.scandir` and `os.listdir` raise their own events), so the code
    under test runs as it is, nothing patched. A hook cannot be removed: one is installed per
    process and does nothing while no recorder is entered."""

    _active: list[FileAccess] = []
    _installed = False

    def __init__(self, directory: Path) -> None:
        self.root = os.fspath(directory)
        self.opens: list[tuple[str, int]] = []
        self.listings: list[tuple[str, int]] = []

    @classmethod
    def _hook(cls, event: str, args: tuple[object, ...]) -> None:
        if not cls._active or event not in ("open", "os.scandir", "os.listdir"):
            return
        path = args[0] if args else None
        if not isinstance(path, (str, os.PathLike)):
            return  # a file descriptor, or the current directory
        name = os.fspath(path)
        for recorder in cls._active:
            if isinstance(name, str) and name.startswith(recorder.root):
                into = recorder.opens if event == "open" else recorder.listings
                into.append((name, threading.get_ident()))

    def __enter__(self) -> FileAccess:
        if not FileAccess._installed:
            sys.addaudithook(FileAccess._hook)
            FileAccess._installed = True
        FileAccess._active.append(self)
        return self

    def __exit__(self, *exc: object) -> None:
        FileAccess._active.remove(self)

    def threads(self) -> set[int]:
        return {t for _, t in self.opens + self.listings}


# --- durable, atomic writes --------------------------------------------------------------------

def test_every_rename_is_preceded_by_an_fsync_of_the_file_and_followed_by_one_of_the_directory(
        tmp_path, signer, monkeypatch):
    directory = tmp_path / "cps"
    checkpoints.publish(directory, signed(signer, 1))
    events: list[tuple[str, str]] = []
    fds: dict[int, str] = {}
    real_open, real_fsync, real_link, real_replace = os.open, os.fsync, os.link, os.replace

    def tracked_open(path, *args, **kwargs):  # type: ignore[no-untyped-def]
        fd = real_open(path, *args, **kwargs)
        fds[fd] = os.fspath(path)
        return fd

    def tracked_fsync(fd):  # type: ignore[no-untyped-def]
        events.append(("fsync", Path(fds[fd]).name))
        return real_fsync(fd)

    def tracked_link(src, dst, *args, **kwargs):  # type: ignore[no-untyped-def]
        events.append(("link", f"{Path(src).name} -> {Path(dst).name}"))
        return real_link(src, dst, *args, **kwargs)

    def tracked_replace(src, dst, *args, **kwargs):  # type: ignore[no-untyped-def]
        events.append(("replace", f"{Path(src).name} -> {Path(dst).name}"))
        return real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "open", tracked_open)
    monkeypatch.setattr(os, "fsync", tracked_fsync)
    monkeypatch.setattr(os, "link", tracked_link)
    monkeypatch.setattr(os, "replace", tracked_replace)
    checkpoints.publish(directory, signed(signer, 2))
    renames = [i for i, (kind, _) in enumerate(events) if kind in ("link", "replace")]
    assert [events[i][1].split(" -> ")[1] for i in renames] == [note_name(2), "latest"], events
    for i in renames:
        source = events[i][1].split(" -> ")[0]
        assert ("fsync", source) in events[:i], events  # its contents are on disk before its name
        assert events[i + 1] == ("fsync", "cps"), events  # and its name right after
    assert pointer(directory) == f"{note_name(2)}\n"


def test_a_crash_before_a_rename_leaves_the_previous_state_valid(tmp_path, signer, monkeypatch):
    directory = tmp_path / "cps"
    first = checkpoints.publish(directory, signed(signer, 1))
    assert first is not None

    def power_cut(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise OSError(5, "Input/output error (simulated crash)")

    # Between the temporary file and its link: no checkpoint 2, the pointer still names 1.
    with monkeypatch.context() as m:
        m.setattr(os, "link", power_cut)
        with pytest.raises(OSError):
            checkpoints.publish(directory, signed(signer, 2))
    # What a process killed at that point leaves behind: temporary files, one of them half-written.
    (directory / f".{note_name(2)}.4242.deadbeef.tmp").write_text("safety-net/access-log\n2\n")
    (directory / ".latest.4242.deadbeef.tmp").write_text("0000")
    assert not (directory / note_name(2)).exists()
    assert checkpoints.latest(directory) == first
    assert checkpoints.latest(directory, hint=2) == first
    good, bad = checkpoints.load_all(directory)
    assert good == [first] and bad == []

    # Between the link and the pointer's rename: the checkpoint is there, the pointer lags.
    with monkeypatch.context() as m:
        m.setattr(os, "replace", power_cut)
        with pytest.raises(OSError):
            checkpoints.publish(directory, signed(signer, 2))
    assert (directory / note_name(2)).exists()
    assert pointer(directory) == f"{note_name(1)}\n"
    assert checkpoints.latest(directory) == first  # valid, if behind: never a wrong file
    # The worker passes the log's size: the file of that size is found and the pointer repaired.
    newest = checkpoints.latest(directory, hint=2)
    assert newest is not None and newest.size == 2
    assert pointer(directory) == f"{note_name(2)}\n"
    assert [c.size for c in checkpoints.load_all(directory)[0]] == [1, 2]


def _publish_then_hang(directory: str, key_dir: str, ready) -> None:  # type: ignore[no-untyped-def]
    """A writer that stops for good between its fsynced temporary file and the link."""
    def hang(*args, **kwargs):  # type: ignore[no-untyped-def]
        ready.set()
        threading.Event().wait()

    os.link = hang  # this process only: it is about to be killed
    signer = checkpoints.Signer(Path(key_dir))
    checkpoints.publish(Path(directory), signer.sign(2, "b" * 64, T0))


def test_a_writer_killed_between_its_temporary_file_and_the_rename(tmp_path, signer):
    """A real `kill -9` (no `finally` runs): a fsynced temporary file is left behind, the
    previous checkpoint and pointer stand, and the next writer signs that size as usual."""
    directory = tmp_path / "cps"
    first = checkpoints.publish(directory, signed(signer, 1))
    ctx = multiprocessing.get_context("fork")
    ready = ctx.Event()
    child = ctx.Process(target=_publish_then_hang,
                        args=(str(directory), str(tmp_path / "keys"), ready))
    child.start()
    try:
        assert ready.wait(timeout=60)
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.join(timeout=30)
    assert child.exitcode == -signal.SIGKILL
    left = list(directory.glob(f".{note_name(2)}.*.tmp"))
    assert len(left) == 1 and checkpoints.parse(left[0].read_text()).size == 2
    assert not (directory / note_name(2)).exists()
    assert pointer(directory) == f"{note_name(1)}\n"
    assert checkpoints.latest(directory, hint=2) == first
    good, bad = checkpoints.load_all(directory)
    assert good == [first] and bad == []  # temporary files are never read
    second = checkpoints.publish(directory, signed(signer, 2))
    assert second is not None and checkpoints.latest(directory) == second


def test_a_checkpoint_file_is_never_replaced(tmp_path, signer):
    directory = tmp_path / "cps"
    first = checkpoints.publish(directory, signed(signer, 5, minutes=0))
    second = checkpoints.publish(directory, signed(signer, 5, minutes=1))
    assert first is not None and second == first  # the one stored first stands
    assert checkpoints.read(directory / note_name(5)).time == T0


def test_a_missing_malformed_or_dangling_pointer_is_rebuilt_by_one_scan(tmp_path, signer, caplog):
    directory = tmp_path / "cps"
    for size in (3, 7, 9):
        checkpoints.publish(directory, signed(signer, size))
    latest = directory / checkpoints.POINTER
    for damage in ("", "000000000", "000000000099.note\n", "../../etc/passwd\n", None):
        if damage is None:
            latest.unlink()
        else:
            latest.write_text(damage)
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="safety_net.audit"):
            found = checkpoints.latest(directory)
        assert found is not None and found.size == 9, damage
        assert pointer(directory) == f"{note_name(9)}\n"
        assert any("rebuilt by scanning 3 checkpoint files" in r.getMessage()
                   for r in caplog.records), damage
    # A pointer naming a file that is no longer a valid checkpoint: the newest valid one.
    (directory / note_name(9)).write_bytes(b"")
    found = checkpoints.latest(directory)
    assert found is not None and found.size == 7
    assert pointer(directory) == f"{note_name(7)}\n"


def test_a_pointer_that_cannot_be_written_does_not_fail_the_read(tmp_path, signer, monkeypatch):
    """A read-only copy of the directory, a full disk: the answer stands without the repair."""
    directory = tmp_path / "cps"
    for size in (1, 2):
        checkpoints.publish(directory, signed(signer, size))
    (directory / checkpoints.POINTER).unlink()

    def read_only(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise OSError(30, "Read-only file system")

    monkeypatch.setattr(checkpoints, "_replace_durably", read_only)
    found = checkpoints.latest(directory, hint=2)
    assert found is not None and found.size == 2
    assert not (directory / checkpoints.POINTER).exists()


def test_files_cut_short_by_a_power_cut_are_skipped_and_reported_by_name(tmp_path, signer, caplog):
    """Before checkpoints were fsynced a power cut could leave an empty or truncated note."""
    directory = tmp_path / "cps"
    for size in (1, 2, 3, 4):
        checkpoints.write(directory, signed(signer, size))
    (directory / checkpoints.POINTER).unlink()  # as before the pointer existed
    (directory / note_name(4)).write_bytes(b"")
    text = (directory / note_name(3)).read_text()
    (directory / note_name(3)).write_text(text[: len(text) // 2].rstrip("\n"))
    with caplog.at_level(logging.WARNING, logger="safety_net.audit"):
        found = checkpoints.latest(directory, hint=4)
    assert found is not None and found.size == 2
    logged = " ".join(r.getMessage() for r in caplog.records)
    assert note_name(4) in logged and "empty" in logged
    assert note_name(3) in logged and "truncated" in logged
    good, bad = checkpoints.load_all(directory)
    assert [c.size for c in good] == [1, 2]
    messages = sorted(str(b) for b in bad)
    assert note_name(3) in messages[0] and "truncated" in messages[0]
    assert note_name(4) in messages[1] and "empty file (0 bytes)" in messages[1]
    # The bad file stays as it is (evidence for `audit verify`); later sizes are signed as usual.
    assert checkpoints.publish(directory, signed(signer, 4)) is None
    assert (directory / note_name(4)).read_bytes() == b""
    fifth = checkpoints.publish(directory, signed(signer, 5))
    assert fifth is not None and checkpoints.latest(directory) == fifth


# --- racing writers on one directory ------------------------------------------------------------

def _hammer(directory: Path, key_dir: Path, sizes: list[int]) -> list[int]:
    signer = checkpoints.Signer(key_dir)
    seen = []
    for size in sizes:
        stored = checkpoints.publish(directory, signer.sign(size, f"{size:064x}", T0))
        assert stored is not None and stored.size == size
        newest = checkpoints.latest(directory)
        assert newest is not None and (directory / note_name(newest.size)).exists()
        seen.append(newest.size)
    return seen


@pytest.mark.parametrize("lock", ["with the lock", "without locks (a filesystem without them)"])
def test_racing_writers_and_readers_never_see_a_wrong_checkpoint(tmp_path, signer, monkeypatch,
                                                                  lock):
    directory = tmp_path / "cps"
    if lock.startswith("without"):
        monkeypatch.setattr(checkpoints, "_pointer_lock", lambda d: contextlib.nullcontext())
    sizes = list(range(1, 241))
    random.Random(7).shuffle(sizes)
    parts = [sizes[i::6] for i in range(6)]
    errors: list[BaseException] = []
    seen: list[int] = []
    stop = threading.Event()

    def writer(part: list[int]) -> None:
        try:
            _hammer(directory, tmp_path / "keys", part)
        except BaseException as exc:
            errors.append(exc)

    def reader() -> None:
        while not stop.is_set():
            try:
                newest = checkpoints.latest(directory) if directory.exists() else None
                if newest is not None:
                    assert checkpoints.read(directory / note_name(newest.size)) == newest
                    seen.append(newest.size)
            except BaseException as exc:
                errors.append(exc)
                return

    readers = [threading.Thread(target=reader) for _ in range(2)]
    writers = [threading.Thread(target=writer, args=(p,)) for p in parts]
    for t in readers + writers:
        t.start()
    for t in writers:
        t.join(timeout=120)
    stop.set()
    for t in readers:
        t.join(timeout=30)
    assert not errors, errors
    assert seen, "the readers never ran"
    assert [c.size for c in checkpoints.load_all(directory)[0]] == list(range(1, 241))
    assert not list(directory.glob(".*.tmp"))
    if lock.startswith("with the lock"):
        assert pointer(directory) == f"{note_name(240)}\n"  # it only moves forward
    else:
        # Without locks the pointer may lag behind a writer that lost a race, never name a file
        # that is not there; the size the worker passes finds the newest and repairs it.
        newest = checkpoints.latest(directory, hint=240)
        assert newest is not None and newest.size == 240
        assert pointer(directory) == f"{note_name(240)}\n"


def _same_size(directory: str, key_dir: str, minutes: int, barrier) -> str:  # type: ignore[no-untyped-def]
    signer = checkpoints.Signer(Path(key_dir))
    barrier.wait(timeout=30)
    cp = signer.sign(500, "e" * 64, T0 + timedelta(minutes=minutes))
    stored = checkpoints.publish(Path(directory), cp)
    assert stored is not None
    return stored.time.isoformat()


def _sizes(directory: str, key_dir: str, sizes: list[int]) -> list[int]:
    return _hammer(Path(directory), Path(key_dir), sizes)


def test_racing_processes_share_one_directory(tmp_path, signer):
    """Replicas are processes: four of them write interleaved sizes, then all the same size."""
    directory = tmp_path / "cps"
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(4) as pool:
        parts = [list(range(1 + i, 201, 4)) for i in range(4)]
        pool.starmap(_sizes, [(str(directory), str(tmp_path / "keys"), p) for p in parts])
        assert [c.size for c in checkpoints.load_all(directory)[0]] == list(range(1, 201))
        assert pointer(directory) == f"{note_name(200)}\n"
        with ctx.Manager() as manager:
            barrier = manager.Barrier(4)
            times = pool.starmap(_same_size, [(str(directory), str(tmp_path / "keys"), m, barrier)
                                              for m in range(4)])
    # One file for size 500; every racer got back the one stored first, never replaced.
    assert len(set(times)) == 1
    assert checkpoints.read(directory / note_name(500)).time.isoformat() == times[0]
    assert pointer(directory) == f"{note_name(500)}\n"
    assert not list(directory.glob(".*.tmp"))


# --- the setting ---------------------------------------------------------------------------------

def test_the_minimum_interval_setting(monkeypatch):
    assert Settings.from_env().checkpoint_min_interval == 60
    monkeypatch.setenv("SAFETY_NET_CHECKPOINT_MIN_INTERVAL", "0")
    assert Settings.from_env().checkpoint_min_interval == 0
    for bad in ("-1", "soon", "nan", "inf"):
        monkeypatch.setenv("SAFETY_NET_CHECKPOINT_MIN_INTERVAL", bad)
        with pytest.raises(ValueError, match="SAFETY_NET_CHECKPOINT_MIN_INTERVAL"):
            Settings.from_env()


# --- the worker ------------------------------------------------------------------------------------


def notes(env) -> list[str]:
    return sorted(p.name for p in env.settings.checkpoints.glob("*.note"))


async def one_more_entry(env) -> None:
    await env.post(DENIED, as_=("mofa", "caseworker"))  # a logged denial


async def test_idle_checkpoints_wait_for_the_minimum_interval(backend, tmp_path):
    clock = FrozenClock(datetime.now(UTC))
    env, close = await fresh(backend, tmp_path, clock=clock, checkpoint_every=3)
    try:
        worker = env.worker
        worker.monotonic = lambda: 0.0  # only the (frozen) clock moves here
        before = notes(env)
        assert len(before) == 1
        for _ in range(4):  # past SAFETY_NET_CHECKPOINT_EVERY too
            await one_more_entry(env)
            assert await worker.tick() > 0
        for _ in range(3):
            assert await worker.tick() == 0  # idle, but the last checkpoint is 0 s old
        assert notes(env) == before
        clock.advance(seconds=59)
        await worker.tick()
        assert notes(env) == before
        clock.advance(seconds=1)
        await worker.tick()  # idle and 60 s on: signed
        after = notes(env)
        assert len(after) == 2
        # Forced checkpoints (exports, shutdown, `audit chain`) do not wait.
        await one_more_entry(env)
        await chain.chain_all(env.runtime.db)
        assert await worker.maybe_checkpoint(force=True) is not None
        assert len(notes(env)) == 3
        assert (await run_verify(env)).ok
    finally:
        await close()


async def test_sparse_traffic_makes_at_most_one_checkpoint_a_minute(backend, tmp_path):
    """The review's case: one logged request every 5 s, the log idle in between. Before the
    minimum interval every request got its own file (60 in these five minutes); now one a
    minute, each at least 60 s after the one before, and the log still verifies."""
    start = datetime.now(UTC)
    clock = FrozenClock(start)
    env, close = await fresh(backend, tmp_path, clock=clock)
    try:
        worker = env.worker
        worker.monotonic = lambda: (clock.now() - start).total_seconds()
        before = set(notes(env))
        for _ in range(60):
            clock.advance(seconds=5)
            await one_more_entry(env)
            assert await worker.tick() == 1
            await worker.tick()  # idle
        added = sorted(set(notes(env)) - before)
        assert len(added) == 5, added
        times = [checkpoints.read(env.settings.checkpoints / n).time for n in added]
        assert all(b - a >= timedelta(seconds=60) for a, b in itertools.pairwise(times))
        assert (await run_verify(env)).ok
    finally:
        await close()


async def test_minimum_interval_zero_signs_when_idle_as_before(backend, tmp_path):
    env, close = await fresh(backend, tmp_path, checkpoint_min_interval=0)
    try:
        before = notes(env)
        await one_more_entry(env)
        await env.worker.tick()  # chains it
        await env.worker.tick()  # idle: signs
        assert len(notes(env)) == len(before) + 1
    finally:
        await close()


async def test_a_replica_clock_ahead_does_not_stall_checkpoints(backend, tmp_path):
    """The newest checkpoint was signed by a replica whose clock runs an hour ahead: by its time
    it is never 60 s old here, so the worker counts from when it first saw it."""
    clock = FrozenClock(datetime.now(UTC))
    env, close = await fresh(backend, tmp_path, clock=clock)
    try:
        worker = env.worker
        mono = [1000.0]
        worker.monotonic = lambda: mono[0]
        clock.advance(hours=1)
        await one_more_entry(env)
        await chain.chain_all(env.runtime.db)
        assert await worker.maybe_checkpoint(force=True) is not None  # "the other replica"
        clock.advance(hours=-1)  # this replica's time
        await one_more_entry(env)
        await worker.tick()
        await worker.tick()
        before = notes(env)
        mono[0] += 59
        await worker.tick()
        assert notes(env) == before
        mono[0] += 1
        await worker.tick()
        assert len(notes(env)) == len(before) + 1
    finally:
        await close()


async def test_a_power_cut_file_from_before_this_fix_stops_neither_checkpoints_nor_verify(
        backend, tmp_path):
    env, close = await fresh(backend, tmp_path, checkpoint_min_interval=0)
    try:
        worker = env.worker
        for _ in range(3):
            await one_more_entry(env)
            await chain.chain_all(env.runtime.db)
            await worker.maybe_checkpoint(force=True)
        directory = env.settings.checkpoints
        names = notes(env)
        assert len(names) == 4
        (directory / checkpoints.POINTER).unlink()  # a directory written before the pointer
        (directory / names[-1]).write_bytes(b"")  # the newest: empty
        text = (directory / names[1]).read_text()
        (directory / names[1]).write_text(text[:40])  # an older one: truncated
        # The head is the size of the empty file: nothing valid can be signed at that size, and
        # the worker does not retry it every pass.
        signs = 0
        real_sign = worker.signer.sign

        def counting_sign(*args):  # type: ignore[no-untyped-def]
            nonlocal signs
            signs += 1
            return real_sign(*args)

        worker.signer.sign = counting_sign  # type: ignore[method-assign]
        for _ in range(3):
            await worker.tick()
        assert signs == 1
        await one_more_entry(env)
        await worker.tick()
        await worker.tick()
        assert len(notes(env)) == 5  # the next entry got its checkpoint
        report = await run_verify(env)
        assert not report.ok
        assert report.checkpoints == 3 and report.checkpoint_files == 5
        assert any(names[-1] in p and "empty file (0 bytes)" in p for p in report.problems)
        assert any(names[1] in p and "truncated" in p for p in report.problems)
        assert len(report.problems) == 2, report.problems  # the log itself is fine
        # and a rewritten log is still caught by the checkpoints that remain
        await tamper(env, "UPDATE access_log SET reason = 'rewritten' WHERE seq = 2")
        await rehash_everything(env)
        report = await run_verify(env, state=False)
        assert any("contradicts" in p for p in report.problems), report.problems
    finally:
        await close()


async def test_verify_checks_every_file_not_only_the_newest(backend, tmp_path):
    env, close = await fresh(backend, tmp_path)
    try:
        for _ in range(2):
            await one_more_entry(env)
            await chain.chain_all(env.runtime.db)
            await env.worker.maybe_checkpoint(force=True)
        names = notes(env)
        middle = env.settings.checkpoints / names[1]
        cp = checkpoints.read(middle)
        middle.write_text(middle.read_text().replace(cp.head, "0" * 64))
        report = await run_verify(env, state=False)
        assert report.checkpoints == 2 and report.checkpoint_files == 3
        assert any(names[1] in p and "bad signature" in p for p in report.problems), report.problems
    finally:
        await close()


# --- 100,000 files ----------------------------------------------------------------------------------

HISTORY = 100_000


async def _a_year_of_sparse_traffic(env) -> int:
    """100,000 entries, each with a real signed checkpoint, written as the worker before the
    minimum interval and the pointer left them: one file per entry, no `latest`. The entries are
    inserted already chained (their hashes computed here as the chainer computes them, which
    `audit verify` checks at the end): chaining 100,000 rows one batch at a time is the
    chainer's test, not this one's. Returns the log's size."""
    db = env.runtime.db
    start = env.runtime.clock.now()
    org = uuid.uuid4()
    with tenancy.using(tenancy.SYSTEM):
        async with db.transaction() as session:
            head = await chain.head(session)
        prev, heads, rows = head.hash, [], []
        for seq in range(head.size + 1, head.size + HISTORY + 1):
            entry = SimpleNamespace(
                seq=seq, id=uuid.uuid4(), at=start + timedelta(microseconds=seq),
                request_id=f"r{seq}", actor=f"user:{org}", org_id=org, purpose="protection",
                action="case.read", target_type="Case", target_id=str(seq), decision="allow",
                reason=None, details={"records": {str(org): ["identity"]}}, refs=str(org))
            digest = chain.entry_hash(chain.raw_of(entry), prev)
            rows.append({**vars(entry), "prev_hash": prev, "hash": digest})
            heads.append((seq, digest))
            prev = digest
        for first in range(0, HISTORY, 20_000):
            async with db.transaction() as session:
                await session.execute(insert(AccessLogEntry), rows[first:first + 20_000])
    directory = env.settings.checkpoints
    signer, at = env.worker.signer, env.runtime.clock.now()
    for seq, digest in heads:
        fd = os.open(directory / note_name(seq), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        os.write(fd, checkpoints.render(signer.sign(seq, digest, at)).encode())
        os.close(fd)
    (directory / checkpoints.POINTER).unlink()  # as a release before the pointer left it
    return head.size + HISTORY


@pytest.mark.heavy
async def test_a_worker_pass_opens_O1_files_among_100000_and_verify_opens_them_all(
        backend, tmp_path):
    """Nothing patched: a log of 100,000 entries, a real note for each, the real worker; the
    files are counted by an audit hook (`FileAccess`)."""
    import asyncio

    clock = FrozenClock(datetime.now(UTC))
    env, close = await fresh(backend, tmp_path, clock=clock)  # the default interval, 60 s
    try:
        worker = env.worker
        worker.monotonic = lambda: 0.0  # only the (frozen) clock moves here
        size = await _a_year_of_sparse_traffic(env)
        directory = env.settings.checkpoints
        assert len(notes(env)) == HISTORY + 1
        loop_thread = threading.get_ident()

        # The first pass after the upgrade: no pointer yet; one scan, off the event loop.
        with FileAccess(directory) as access:
            assert await worker.tick() == 0
        assert len(access.listings) == 1 and len(access.opens) <= 8, access.opens
        assert loop_thread not in access.threads()
        assert pointer(directory) == f"{note_name(size)}\n"

        # Every later pass: the pointer and the file it names.
        with FileAccess(directory) as access:
            for _ in range(20):
                assert await worker.tick() == 0
        assert access.listings == [] and len(access.opens) <= 20 * 2, access.opens
        assert loop_thread not in access.threads()

        # A new entry: chained at once, signed once the newest checkpoint is 60 s old.
        await one_more_entry(env)
        with FileAccess(directory) as access:
            assert await worker.tick() == 1
            assert await worker.tick() == 0  # idle, but the newest checkpoint is 0 s old
        assert access.listings == [] and len(access.opens) <= 2 * 3, access.opens
        assert len(notes(env)) == HISTORY + 1
        clock.advance(seconds=60)
        with FileAccess(directory) as access:
            assert await worker.tick() == 0  # idle and 60 s on: signed
        assert access.listings == [] and len(access.opens) <= 16, access.opens
        assert loop_thread not in access.threads()
        assert len(notes(env)) == HISTORY + 2
        assert pointer(directory) == f"{note_name(size + 1)}\n"
        with FileAccess(directory) as access:
            await asyncio.gather(*(worker.tick() for _ in range(5)))
        assert access.listings == [] and len(access.opens) <= 5 * 3, access.opens

        # `audit verify` does not trust the pointer: it opens and checks every note (on one backend:
        # reading the files does not depend on it, and 100,000 signature checks take a while).
        if backend != "sqlite":
            return
        with FileAccess(directory) as access:
            report = await run_verify(env)
        assert report.ok, report.problems
        assert report.checkpoints == report.checkpoint_files == HISTORY + 2
        opened = {Path(p).name for p, _ in access.opens}
        assert len({n for n in opened if n.endswith(".note")}) == HISTORY + 2
    finally:
        await close()
