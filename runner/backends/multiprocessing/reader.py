"""The parent's reader of every child's output and events, driven by mprun's one loop.

Children write; only the parent turns what they write into records (records.py), which the
loop hands to the log (honcho's design): each read of a child's stdout and stderr becomes an
`Output` record of its lines, in order, each event a child sends (a log record, its exception,
its return value) its own record, and each dump of a child's stacks (which the backend asks
for with a signal) a `Stack` record. Nothing here runs on a thread of its own: `poll` reads
what is ready, and every wait of a run goes through it, so that output is read whatever a step
waits for, and no thread of mprun's runs while it forks.
"""

from __future__ import annotations

import os
import pickle
import selectors
import socket
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection

from runner import records
from runner.backends.multiprocessing.feeder_trap import pipe_fill
from runner.child import FLUSHED, STACK_READY
from runner.events import Logged, Raised, Returned, Usage
from runner.records import Record

# faulthandler writes a dump in many small writes, all at once: a pause this long (with nothing
# left in the pipe) ends one. Shorter, and a child descheduled mid-dump had its dump cut in two.
STACK_SETTLE = 0.2
EVENT_LIMIT = 64 * 1024 * 1024  # bytes: a larger length is a garbled events pipe
STACK_LIMIT = 256 * 1024  # bytes of one dump kept (faulthandler stops at 100 threads of 100 frames)
CHUNK = 65536  # bytes read at once
LINE_LIMIT = 1024 * 1024  # bytes of a line logged in one record; a longer one is cut into partial records
DRAIN_LIMIT = 1024 * 1024  # bytes read of a pipe whose fill cannot be told, when a process exits


EARLY_LINES = 400  # of stderr kept from a child's set-up, for its traceback should it fail there


@dataclass
class Report:
    """What one child said about itself, gathered as it ran."""

    raised: Raised | None = None
    returned: Returned | None = None
    usage: Usage | None = None
    finished: float | None = None  # monotonic time its target was over (its usage arrived)
    ended: float | None = None  # monotonic time its exit descriptor fired: when it really exited
    stack_ready: bool = False  # it can dump its stacks on request
    stacks: int = 0  # dumps logged so far
    stack_reason: str | None = None  # why the last dump was asked for
    flushed: bool = False  # it wrote out its streams when asked, and is ending by SIGTERM
    early: list[str] = field(default_factory=list, repr=False)  # stderr lines before it was ready
    outputs: list[_Stream] = field(default_factory=list, repr=False)  # its stdout and stderr
    events: _Stream | None = field(default=None, repr=False)
    stack: _Stream | None = field(default=None, repr=False)


@dataclass(eq=False)
class _Stream:
    process: str
    pid: int
    name: str  # stdout, stderr, events or stack
    connection: Connection
    report: Report
    partial: bytearray = field(default_factory=bytearray)  # grown in place: a long line is not copied per read
    last_read: float = 0.0


@dataclass(frozen=True)
class _Channel:
    readable: Callable[[], bool]


class Reader:
    """Reads the pipes of every started child until they close, and watches their exits;
    logs as it goes."""

    def __init__(self, emit: Callable[[Record], None], clock: Callable[[], float] = time.monotonic) -> None:
        self.emit = emit
        self.clock = clock
        self.exited: list[Report] = []  # processes whose exit descriptor fired, for the backend to take
        self._selector = selectors.DefaultSelector()
        self.open = 0  # pipes not closed yet
        self._dumping: list[_Stream] = []  # stack pipes with part of a dump read
        self._by_pid: dict[int, _Stream] = {}  # each child's stderr
        self._server: _Stream | None = None  # the fork server's stderr (see forkserver_hook.py)
        self._routed: _Stream | None = None  # the child whose set-up failure the server is writing

    def add(self, process: str, pid: int, pipes: dict[str, Connection], exit_descriptor: int) -> Report:
        """Start reading a just-started child's pipes (stdout, stderr, events, stack), and
        watching the descriptor that becomes readable when it exits."""
        report = Report()
        self._selector.register(exit_descriptor, selectors.EVENT_READ, report)
        for name, connection in pipes.items():
            stream = _Stream(process, pid, name, connection, report)
            self._selector.register(connection, selectors.EVENT_READ, stream)
            if name in ("stdout", "stderr"):
                report.outputs.append(stream)
                if name == "stderr":
                    self._by_pid[pid] = stream
            elif name == "events":
                report.events = stream
            else:
                report.stack = stream
            self.open += 1
        return report

    def add_server(self, connection: Connection, pid: int) -> None:
        """Read the fork server's stderr too: its children's set-up failures come there."""
        self._server = _Stream("fork server", pid, "stderr", connection, Report())
        self._selector.register(connection, selectors.EVENT_READ, self._server)

    def drain_server(self) -> None:
        """What the fork server has written so far (a child that just exited wrote there)."""
        if self._server is not None:
            self._take(self._server)

    def add_channel(self, channel: socket.socket | Connection, readable: Callable[[], bool]) -> None:
        """Call `readable` whenever `channel` (a socket, a connection) can be read: it reads
        what is there, and says whether to go on watching (False at end of file)."""
        self._selector.register(channel, selectors.EVENT_READ, _Channel(readable))

    def remove_channel(self, channel: socket.socket | Connection) -> None:
        """Stop watching `channel`, before it is closed (its number may then be reused)."""
        if channel.fileno() in self._selector.get_map():
            self._selector.unregister(channel)

    def wake_on(self, descriptor: int) -> None:
        """Also return from `poll` when `descriptor` is readable (what is read there is the
        caller's: signal.set_wakeup_fd's pipe)."""
        self._selector.register(descriptor, selectors.EVENT_READ, None)

    def poll(self, timeout: float | None) -> bool:
        """Read and log whatever is ready, waiting up to `timeout` seconds (None: until
        something is) for the first of it; whether anything was."""
        if self._dumping:  # a dump in progress ends after a quiet STACK_SETTLE
            timeout = STACK_SETTLE if timeout is None else min(timeout, STACK_SETTLE)
        ready = self._selector.select(timeout)
        for key, _ in ready:
            if key.data is None:
                continue  # a wake-up: its reader drains it
            if isinstance(key.data, _Channel):
                if not key.data.readable():
                    self._selector.unregister(key.fileobj)
                continue
            if isinstance(key.data, Report):  # an exit descriptor: the process has exited
                key.data.ended = self.clock()
                self._selector.unregister(key.fileobj)
                self.exited.append(key.data)
                continue
            self._read_safely(key.data)
        self._log_dumps()
        return bool(ready)

    def drain(self, report: Report) -> None:
        """Record what a process that has exited left in its pipes, all in before its exit is
        told: its last events, its last output (a last line without its newline too), a dump
        of its stacks that its end cut short (a crash)."""
        for stream in (report.events, *report.outputs, report.stack):
            if stream is not None:
                self._take(stream, ended=True)

    def _take(self, stream: _Stream, *, ended: bool = False) -> None:
        """Read what is in this pipe now, and no more: a descendant holding it may write on
        without end. `ended`: the process has exited, so what it began is over: the end of
        file if it is there, else a line without its newline shown as partial, and a dump
        logged as it is."""
        fill = None if stream.connection.closed else pipe_fill(stream.connection.fileno())
        budget = DRAIN_LIMIT if fill is None else fill[0]
        while budget > 0 and not stream.connection.closed:
            got = self._read_safely(stream, min(budget, CHUNK))
            if not got:
                break
            budget -= got
        if not ended or stream.connection.closed:
            return
        fill = pipe_fill(stream.connection.fileno())
        if stream.connection.poll(0) and fill is not None and not fill[0]:
            self._read_safely(stream)  # readable, and empty: its end of file
        if stream.connection.closed:
            return
        if stream in self._dumping:
            self._log_dump(stream)
        elif stream.partial and stream.name in ("stdout", "stderr"):
            self._continued(stream, len(stream.partial))

    def _read_safely(self, stream: _Stream, limit: int = CHUNK) -> int:
        """Read once (see `_read`); 0 once the stream is closed."""
        try:
            return self._read(stream, limit)
        except Exception as error:  # noqa: BLE001 - mprun must outlive anything a child sends
            try:
                self._give_up(stream, error)
            except Exception:  # noqa: BLE001 - not even logging works: keep reading all the same
                self._close(stream)
        return 0

    def close(self) -> None:
        """Stop reading and release every descriptor; what was not read by now is not logged."""
        for key in list(self._selector.get_map().values()):
            if isinstance(key.data, _Stream) and key.data is not self._server:  # the server's: the next run's too
                key.data.connection.close()
        self._selector.close()

    @staticmethod
    def expect_dumps(reports: list[Report], reason: str | None) -> None:
        """The next dump of each of these processes is for `reason` (None: none is expected)."""
        for report in reports:
            report.stack_reason = reason

    def _log_dumps(self) -> None:
        now = self.clock()
        for stream in list(self._dumping):
            # Busy with other pipes, this thread may come back late to one with more to read.
            if now - stream.last_read >= STACK_SETTLE and not stream.connection.poll(0):
                self._log_dump(stream)

    def _log_dump(self, stream: _Stream) -> None:
        self._dumping.remove(stream)
        text, stream.partial = stream.partial.decode(errors="replace"), bytearray()
        reason, stream.report.stack_reason = stream.report.stack_reason, None
        if text.startswith("Fatal Python error"):
            reason = "crashed"
        self.emit(records.Stack(stream.process, stream.pid, reason or "a signal from outside mprun", text.rstrip()))
        stream.report.stacks += 1

    def _give_up(self, stream: _Stream, error: Exception) -> None:
        """A stream mprun cannot read any more (a garbled event): say so, and stop reading it."""
        self.emit(records.Unreadable(stream.process, stream.pid, stream.name, f"{type(error).__name__}: {error}"))
        self._close(stream)

    def _read(self, stream: _Stream, limit: int = CHUNK) -> int:
        """Read up to `limit` bytes of the stream and record them; how many (0: it was at its
        end of file, and is closed now)."""
        if stream.name == "stack":
            return self._stack(stream, limit)
        try:
            chunk = _read_some(stream.connection, limit)
        except OSError:
            chunk = b""
        if chunk:
            if stream.name == "events":
                self._events(stream, chunk)
            else:
                self._lines(stream, chunk)
            return len(chunk)
        if stream.partial and stream.name != "events":  # a last line without its newline
            self._output(stream, stream.partial)
        stream.partial = bytearray()  # of events, a message cut short by a kill: nothing to tell
        self._close(stream)
        return 0

    def _events(self, stream: _Stream, chunk: bytes) -> None:
        """The whole messages read so far, each as `Connection.send_bytes` frames it (a length,
        then the bytes): read as they come, never waiting for the rest of one, which a child
        killed while it wrote would never send."""
        data = stream.partial
        data += chunk  # in place: an event of megabytes arrives in many reads
        start = 0
        while len(data) - start >= 4:
            (size,) = struct.unpack_from("!i", data, start)
            header = 4
            if size == -1:  # over 2 GiB: an 8-byte length follows
                if len(data) - start < 12:
                    break
                (size,) = struct.unpack_from("!Q", data, start + 4)
                header = 12
            if size < 0 or size > EVENT_LIMIT:
                raise ValueError(f"an event of {size} bytes")
            if len(data) - start < header + size:
                break
            event = pickle.loads(data[start + header : start + header + size])
            start += header + size
            self._event(stream, event)
        del data[:start]

    def _close(self, stream: _Stream) -> None:
        if stream.connection.closed:
            return
        self._selector.unregister(stream.connection)
        stream.connection.close()
        if stream is not self._server:  # not waited for: it lives as long as the server
            self.open -= 1

    def _stack(self, stream: _Stream, limit: int) -> int:
        try:
            chunk = _read_some(stream.connection, limit)
        except OSError:
            chunk = b""
        if not chunk:
            if stream in self._dumping:  # cut short by the child's exit: log what came
                self._log_dump(stream)
            stream.report.stack_ready = False  # gone, or exec'd: the signal would now kill it
            self._close(stream)
            return 0
        read = len(chunk)
        if not stream.report.stack_ready and chunk.startswith(STACK_READY):
            stream.report.stack_ready = True
            chunk = chunk[len(STACK_READY) :]
        if FLUSHED in chunk:  # the answer to a flush, which no dump's text holds
            chunk = chunk.replace(FLUSHED, b"")
            stream.report.flushed = True
        if chunk:
            stream.partial += chunk[: max(0, STACK_LIMIT - len(stream.partial))]
            stream.last_read = self.clock()
            if stream not in self._dumping:
                self._dumping.append(stream)
        return read

    def _lines(self, stream: _Stream, chunk: bytes) -> None:
        cut = chunk.rfind(b"\n")  # in the new bytes only: a long line is not searched again
        if cut < 0:
            stream.partial += chunk
        else:
            complete = bytes(stream.partial) + chunk[:cut] if stream.partial else chunk[:cut]
            stream.partial = bytearray(chunk[cut + 1 :])
            self._output(stream, complete)
        while len(stream.partial) >= LINE_LIMIT:
            # A line without end in sight: logged in pieces, each marked partial (the next
            # record of the stream continues it), so that memory stays bounded.
            self._continued(stream, _character_end(stream.partial, LINE_LIMIT))
        if b"\r" in chunk[cut + 1 :] and stream.partial:
            # A progress line (each update starts with a carriage return, and no newline comes
            # until the end): shown as it is written, as a record marked partial.
            self._continued(stream, len(stream.partial))

    def _continued(self, stream: _Stream, size: int) -> None:
        """Log the first `size` bytes of the line being read as a partial record."""
        text = stream.partial[:size].decode(errors="replace")
        del stream.partial[:size]
        self.emit(records.Output(stream.process, stream.pid, stream.name, [text], partial=True))

    def _output(self, stream: _Stream, lines: bytes | bytearray) -> None:
        # Decoded together: a newline never falls inside a UTF-8 character, so each line
        # comes out as it would alone, bad bytes replaced.
        text = lines.decode(errors="replace")
        texts = [line.rstrip("\r") for line in text.split("\n")] if "\r" in text else text.split("\n")
        if stream is self._server:
            self._from_server(texts)
        else:
            self._lines_of(stream, texts)

    def _lines_of(self, stream: _Stream, texts: list[str]) -> None:
        report = stream.report
        if stream.name == "stderr" and not report.stack_ready and len(report.early) < EARLY_LINES:
            report.early += texts[: EARLY_LINES - len(report.early)]  # what setting it up said
        self.emit(records.Output(stream.process, stream.pid, stream.name, texts))

    def _from_server(self, texts: list[str]) -> None:
        """The fork server's lines: a child's framed traceback goes to that child's stderr, the
        rest is the server's own."""
        from runner.forkserver_hook import END, START

        for text in texts:
            if text.startswith(START):
                pid = text[len(START) :]
                self._routed = self._by_pid.get(int(pid)) if pid.isdigit() else None
            elif text == END:
                self._routed = None
            elif self._routed is not None:
                self._lines_of(self._routed, [text])
            elif self._server is not None:
                self.emit(records.Output(self._server.process, self._server.pid, "stderr", [text]))

    def setup_failure(self, report: Report, process: str, pid: int) -> None:
        """A process that ended before it could run its target (its `class:` module, or a
        barrier action's, raised as a spawn child unpickled what it was sent): the traceback
        it wrote is its exception."""
        early = report.early
        if report.stack_ready or report.raised is not None or not early:
            return
        starts = [index for index, line in enumerate(early) if line.startswith("Traceback (most recent call last)")]
        if not starts:
            return
        trace = [line for line in early[starts[-1] :] if line]
        last = trace[-1]
        kind, _, message = last.partition(": ")
        if not kind.replace(".", "").replace("_", "").isalnum():
            return  # not an exception's last line
        raised = Raised(kind.rpartition(".")[2], message, "\n".join(trace) + "\n")
        report.raised = raised
        self.emit(records.Raised(process, pid, raised.type, raised.message, raised.traceback))

    def _catch_up(self, report: Report) -> None:
        """Log what a process printed before it sent the event now read: it is in its pipes
        already (the child flushes first), and belongs before the event in the log."""
        for output in report.outputs:
            self._take(output)

    def _event(self, stream: _Stream, event: object) -> None:
        process, pid = stream.process, stream.pid
        if isinstance(event, Logged):
            self.emit(
                records.Logged(process, pid, event.logger, event.level, event.message, event.created, event.traceback)
            )
        elif isinstance(event, Raised):
            self._catch_up(stream.report)
            stream.report.raised = event
            self.emit(records.Raised(process, pid, event.type, event.message, event.traceback))
        elif isinstance(event, Returned):
            self._catch_up(stream.report)
            stream.report.returned = event
            self.emit(records.Returned(process, pid, event.repr))
        elif isinstance(event, Usage):
            stream.report.usage = event
            stream.report.finished = self.clock()


def _character_end(data: bytearray, size: int) -> int:
    """`size`, or less so as not to cut a UTF-8 character in two."""
    end = size
    while end > size - 3 and end < len(data) and data[end] & 0xC0 == 0x80:
        end -= 1
    return end


def _read_some(connection: Connection, limit: int = CHUNK) -> bytes:
    return os.read(connection.fileno(), limit)
