"""Stopping a sweep driver cleanly: Ctrl-C (SIGINT) and SIGTERM (`ray job stop`, Kubernetes, a
batch scheduler, `kill`) both ask Ray Tune to save the experiment state and return, so
`madn sweep --resume` continues the sweep; the driver also learns that it was stopped.

Tune itself only stops gracefully on SIGINT and SIGUSR1, and after it returns its trials all
read TERMINATED (its clean-up stops the running ones), so an interruption cannot be told from
the results. `StopSignals` therefore takes SIGINT and SIGTERM over while Tune runs (with Tune's
own SIGINT handler turned off via TUNE_DISABLE_SIGINT_HANDLER), records the request and forwards
it to Tune as SIGUSR1. The first signal puts the previous handlers back, so a second Ctrl-C or
SIGTERM ends the driver at once.
"""

from __future__ import annotations

import os
import signal
import threading
from types import FrameType, TracebackType
from typing import Any

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
TUNE_SIGINT_SWITCH = "TUNE_DISABLE_SIGINT_HANDLER"


class StopSignals:
    """Context manager around `Tuner.fit()`; `requested` is the signal number received, or None.

    Outside the main thread (where handlers cannot be installed) it does nothing and Tune keeps
    its own SIGINT handling."""

    def __init__(self) -> None:
        self.requested: int | None = None
        self._previous: dict[int, Any] = {}
        self._saved_switch: str | None = None
        self._active = False

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is not threading.main_thread():
            return self
        self._active = True
        self._saved_switch = os.environ.get(TUNE_SIGINT_SWITCH)
        os.environ[TUNE_SIGINT_SWITCH] = "1"
        for number in STOP_SIGNALS:
            self._previous[number] = signal.getsignal(number)
            signal.signal(number, self._stop)
        return self

    def _stop(self, number: int, frame: FrameType | None) -> None:
        self.requested = number
        self._restore_handlers()
        if signal.getsignal(signal.SIGUSR1) in (signal.SIG_DFL, signal.SIG_IGN, None):
            raise KeyboardInterrupt  # Tune's loop has not started: nothing to save yet
        signal.raise_signal(signal.SIGUSR1)  # Tune: save the state and return from fit()

    def _restore_handlers(self) -> None:
        for number, handler in self._previous.items():
            signal.signal(number, handler)
        self._previous.clear()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if not self._active:
            return
        self._restore_handlers()
        if self._saved_switch is None:
            os.environ.pop(TUNE_SIGINT_SWITCH, None)
        else:
            os.environ[TUNE_SIGINT_SWITCH] = self._saved_switch
