"""tune.stopping.StopSignals with real signals sent to this process."""

from __future__ import annotations

import os
import signal

import pytest

from tune.stopping import TUNE_SIGINT_SWITCH, StopSignals


@pytest.mark.parametrize("number", [signal.SIGINT, signal.SIGTERM])
def test_first_signal_is_forwarded_to_tune_and_recorded(number: int) -> None:
    forwarded: list[int] = []
    saved_usr1 = signal.signal(signal.SIGUSR1, lambda n, f: forwarded.append(n))
    before = {n: signal.getsignal(n) for n in (signal.SIGINT, signal.SIGTERM)}
    try:
        with StopSignals() as stop:
            assert os.environ[TUNE_SIGINT_SWITCH] == "1"  # Tune leaves SIGINT to us
            signal.raise_signal(number)
            assert stop.requested == number
            assert forwarded == [signal.SIGUSR1]
            # the handlers stepped aside: a second signal acts as it did before
            assert {n: signal.getsignal(n) for n in before} == before
        assert TUNE_SIGINT_SWITCH not in os.environ
    finally:
        signal.signal(signal.SIGUSR1, saved_usr1)


def test_signal_before_tune_listens_interrupts() -> None:
    saved_usr1 = signal.signal(signal.SIGUSR1, signal.SIG_DFL)
    try:
        with pytest.raises(KeyboardInterrupt), StopSignals() as stop:
            signal.raise_signal(signal.SIGTERM)
        assert stop.requested == signal.SIGTERM
    finally:
        signal.signal(signal.SIGUSR1, saved_usr1)
