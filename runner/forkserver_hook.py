"""Imported in mprun's fork server only (a preload, see the multiprocessing backend): a child it
forks that fails before its process is set up (its `class:` module raising on import as it
unpickles it) prints its traceback through `sys.excepthook`, onto the server's stderr, which is
a pipe mprun reads. The hook frames it with the child's pid, so that mprun logs it as that
process's exception rather than as the server's text.
"""

from __future__ import annotations

import os
import sys

# The framing mprun's reader looks for: never the start of a line of text a traceback holds.
START = "\x00mprun set-up failed: "
END = "\x00mprun set-up end"

_server = os.getpid()
_previous = sys.excepthook


def _framed(kind: type[BaseException], value: BaseException, trace: object) -> None:
    if os.getpid() == _server:  # the server's own error: as Python shows it
        _previous(kind, value, trace)  # type: ignore[arg-type]
        return
    import io

    # Written whole, in one write: children failing at once share the pipe, and a write of up
    # to PIPE_BUF bytes is never interleaved with another (a longer traceback may be).
    stderr, sys.stderr = sys.stderr, io.StringIO()
    try:
        _previous(kind, value, trace)  # type: ignore[arg-type]
        text = sys.stderr.getvalue()
    finally:
        sys.stderr = stderr
    framed = f"{START}{os.getpid()}\n{text}{'' if text.endswith(chr(10)) else chr(10)}{END}\n"
    os.write(2, framed.encode(errors="backslashreplace"))


sys.excepthook = _framed
