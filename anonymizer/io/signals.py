"""Ctrl-C and SIGTERM held while worker processes start, and delivered when that step ends.

Python runs a signal handler between two bytecodes of the main thread, wherever they are: in the
middle of forking a worker, inside the lock release of an at-fork hook, while a pool starts its
manager thread. An exception raised there is printed and lost ("Exception ignored in …", and the
run goes on to the end as if nothing had been asked), or leaves the pool half made, so that its
clean-up fails with an error that is not the interrupt. While a pool starts or is given work, the
two signals are therefore recorded rather than handled, and sent again, to the handler that was
in place, once the step is over.
"""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from typing import Iterator

HELD = (signal.SIGINT, signal.SIGTERM)


@contextmanager
def held_signals() -> Iterator[None]:
    """Record SIGINT and SIGTERM during the block, then deliver them to the handlers in place.

    Only the main thread handles signals; elsewhere this does nothing. A handler that was not set
    from Python (``signal.getsignal`` gives None) cannot be put back, so that signal is not held.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    arrived: list[int] = []

    def record(signum, frame) -> None:
        if signum not in arrived:
            arrived.append(signum)

    previous: dict[int, object] = {}
    for signum in HELD:
        handler = signal.getsignal(signum)
        if handler is not None:
            previous[signum] = handler
            signal.signal(signum, record)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        for signum in arrived:
            signal.raise_signal(signum)
