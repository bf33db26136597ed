"""Stopping an ingest cleanly on SIGINT (Ctrl-C) or SIGTERM.

:func:`signals` is a context manager that ``hdi.ingest`` runs inside. It installs handlers for
SIGINT and SIGTERM (only in the main thread; the previous handlers come back when it exits), and a
watcher thread that learns of a signal through ``signal.set_wakeup_fd``, so it reacts at once even
while the main thread is blocked inside a database statement or a download. On the first signal the
watcher

- records it (:func:`requested`, :func:`check` raising :class:`Interrupted`), and
- cancels the statement running in the chunk's store transaction (DuckDB ``interrupt()``, ADBC
  ``cancel()``), registered with :func:`cancelling`: the statement fails, the transaction rolls back.

The main thread never waits long on anything it cannot leave: downloads and other network calls
run in daemon threads (:class:`DaemonPool`, :func:`call`) that it waits on in short slices
(:func:`result`); retries sleep on an event a signal sets (:func:`sleep`). The pipeline checks the
flag between chunks and after each stage, rolls the chunk in flight back and records the run
``interrupted``; the CLI exits 128 + the signal number (130 for SIGINT, 143 for SIGTERM).

A second signal exits the process at once (``os._exit``): whatever was not committed is rolled
back by the store itself, as after a kill.

Outside :func:`signals` (another thread, or no ingest running) every helper here does exactly what
it wraps, and :func:`check` never raises.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, wait
from types import FrameType
from typing import Any, ParamSpec, TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")
P = ParamSpec("P")

SIGNALS = (signal.SIGINT, signal.SIGTERM)
POLL = 0.05  # seconds: how long the main thread waits on a thread before looking at the flag again


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM arrived: the run stops. A KeyboardInterrupt, so that no ``except
    Exception`` turns it into a failed chunk."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"interrupted by {signal_name(signum)}")
        self.signum = signum

    @property
    def name(self) -> str:
        return signal_name(self.signum)

    @property
    def exit_code(self) -> int:
        return exit_code(self.signum)


def signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def exit_code(signal_or_name: int | str) -> int:
    """The shell's convention: 128 + the signal number (SIGINT 130, SIGTERM 143)."""
    num = signal.Signals[signal_or_name].value if isinstance(signal_or_name, str) else int(signal_or_name)
    return 128 + num


class _State:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.active = False  # a signals() scope is installed (in the main thread)
        self.signum: int | None = None
        self.event = threading.Event()  # set on the first signal
        self.cancels: dict[int, Callable[[], None]] = {}
        self.next_token = 0


_state = _State()


# ----------------------------------------------------------------------------------- the scope
@contextlib.contextmanager
def signals() -> Iterator[None]:
    """Handle SIGINT/SIGTERM as described in the module docstring while the block runs.

    Installs nothing when called outside the main thread or inside another ``signals()`` block.
    """
    if _state.active or threading.current_thread() is not threading.main_thread():
        yield
        return
    reader, writer = socket.socketpair()
    writer.setblocking(False)
    try:
        old_fd = signal.set_wakeup_fd(writer.fileno(), warn_on_full_buffer=False)
    except (ValueError, OSError):  # not the main interpreter: leave signals alone
        reader.close()
        writer.close()
        yield
        return
    with _state.lock:
        _state.active, _state.signum = True, None
        _state.event.clear()
        _state.cancels.clear()
    watcher = threading.Thread(target=_watch, args=(reader,), name="hdi-signals", daemon=True)
    watcher.start()
    old = {s: signal.getsignal(s) for s in SIGNALS}
    try:
        for s in SIGNALS:
            signal.signal(s, _handler)
        yield
    finally:
        for s, h in old.items():
            if h is not None:
                signal.signal(s, h)
        signal.set_wakeup_fd(old_fd)
        with _state.lock:
            _state.active, _state.signum = False, None
            _state.event.clear()
            _state.cancels.clear()
        with contextlib.suppress(OSError):
            writer.send(b"\0")  # tells the watcher to stop
        watcher.join(1.0)
        reader.close()
        writer.close()


def guarded(fn: Callable[P, T]) -> Callable[P, T]:
    """Run ``fn`` inside :func:`signals`."""
    import functools

    @functools.wraps(fn)
    def run(*args: P.args, **kwargs: P.kwargs) -> T:
        with signals():
            return fn(*args, **kwargs)

    return run


def _handler(signum: int, frame: FrameType | None) -> None:
    """The Python-level handler: the watcher thread does the work (it learns of the signal from
    the wakeup fd even while this thread is blocked in C code), so nothing is raised here."""


def _watch(reader: socket.socket) -> None:
    while True:
        try:
            data = reader.recv(64)
        except OSError:
            return
        if not data:
            return
        for signum in data:
            if signum == 0:
                return
            _received(signum)


def _received(signum: int) -> None:
    with _state.lock:
        if not _state.active:
            return
        first = _state.signum is None
        if first:
            _state.signum = signum
            _state.event.set()
    if not first:
        os.write(2, f"error: {signal_name(signum)} again: exiting at once; nothing uncommitted is kept, run "
                    "`hdi ingest` again to finish\n".encode())
        os._exit(exit_code(signum))
    log.warning("%s received: stopping; the chunk in flight is rolled back and no further chunk starts "
                "(%s again exits at once)", signal_name(signum), signal_name(signum))
    # In its own thread, so that a cancel that hangs cannot keep a second signal from exiting.
    threading.Thread(target=_cancel_all, name="hdi-cancel", daemon=True).start()


def _cancel_all() -> None:
    with _state.lock:  # held while cancelling: a transaction cannot unregister (and commit) meanwhile
        for fn in list(_state.cancels.values()):
            try:
                fn()
            except Exception as e:  # noqa: BLE001 - the statement then ends on its own; the flag is set
                log.warning("could not cancel the running statement: %s", e)


# ----------------------------------------------------------------------------------- helpers
def requested() -> bool:
    """Whether SIGINT/SIGTERM arrived during the current :func:`signals` block."""
    return _state.signum is not None


def check() -> None:
    """Raise :class:`Interrupted` when a signal arrived."""
    signum = _state.signum
    if signum is not None:
        raise Interrupted(signum)


@contextlib.contextmanager
def cancelling(cancel: Callable[[], None]) -> Iterator[None]:
    """While the block runs, a signal calls ``cancel`` (from another thread)."""
    with _state.lock:
        token = _state.next_token
        _state.next_token += 1
        _state.cancels[token] = cancel
    try:
        yield
    finally:
        with _state.lock:
            _state.cancels.pop(token, None)


def _main_scope() -> bool:
    return _state.active and threading.current_thread() is threading.main_thread()


def result(future: Future[T]) -> T:
    """``future.result()``, left with :class:`Interrupted` within :data:`POLL` of a signal."""
    if not _main_scope():
        return future.result()
    while not future.done():
        check()
        wait([future], timeout=POLL)
    check()
    return future.result()


def call(fn: Callable[[], T]) -> T:
    """``fn()``; in the main thread of a :func:`signals` block it runs in a daemon thread and is
    abandoned on a signal (for network calls: a slow server cannot hold the process)."""
    check()
    if not _main_scope():
        return fn()
    future: Future[T] = Future()

    def run() -> None:
        try:
            future.set_result(fn())
        except BaseException as e:  # noqa: BLE001 - handed to the waiting thread
            future.set_exception(e)

    threading.Thread(target=run, name="hdi-io", daemon=True).start()
    return result(future)


def sleep(seconds: float) -> None:
    """``time.sleep``, cut short by a signal (then :class:`Interrupted`)."""
    if not _state.active:
        time.sleep(seconds)
        return
    if _state.event.wait(seconds):
        check()


def exit_now(code: int) -> None:
    """End the process after an interrupted run, once its outcome is recorded and shown: flush the
    logs and the console, close the stores, and skip the interpreter's teardown (0.3-1 s of module
    finalisation here; a download abandoned in a daemon thread is simply dropped)."""
    import sys

    try:
        logging.shutdown()
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        from hdi.store import close_all

        close_all()
    finally:
        os._exit(code)


class DaemonPool:
    """A small thread pool of daemon threads: unlike ``ThreadPoolExecutor``, whose threads the
    interpreter joins at exit, a download in flight cannot hold up an interrupted process.

    Leaving the ``with`` block cancels what has not started and, unless a signal arrived, waits
    for what is running.
    """

    def __init__(self, workers: int, name: str) -> None:
        self.workers, self.name = max(1, workers), name
        self._queue: queue.SimpleQueue[tuple[Future[Any], Callable[..., Any], tuple[Any, ...]] | None] = \
            queue.SimpleQueue()
        self._threads: list[threading.Thread] = []

    def submit(self, fn: Callable[..., T], *args: Any) -> Future[T]:
        future: Future[T] = Future()
        self._queue.put((future, fn, args))
        if len(self._threads) < self.workers:
            t = threading.Thread(target=self._work, name=f"{self.name}_{len(self._threads)}", daemon=True)
            t.start()
            self._threads.append(t)
        return future

    def _work(self) -> None:
        while (item := self._queue.get()) is not None:
            future, fn, args = item
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(fn(*args))
            except BaseException as e:  # noqa: BLE001 - handed to whoever waits on the future
                future.set_exception(e)

    def shutdown(self, *, wait: bool) -> None:
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is not None:
                item[0].cancel()
        for _ in self._threads:
            self._queue.put(None)
        if wait:
            for t in self._threads:
                t.join()

    def __enter__(self) -> DaemonPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown(wait=not requested())
