"""Ctrl-C (SIGINT): held back while outputs are put in place (:func:`deferred_interrupts`), and
stopping a whole command, even inside a network's training (:class:`CommandInterrupts`)."""

from __future__ import annotations

import signal
import sys
import threading
from contextlib import contextmanager

__all__ = ["CommandInterrupts", "after_commit", "committed", "deferred_interrupts", "final_commit", "on_final_commit"]


@contextmanager
def deferred_interrupts():
    """Hold SIGINT back while the body runs; yields a callable telling whether one came.

    Used around the renames that put outputs in place, so that a Ctrl-C
    cannot leave half of them: the caller checks and undoes its work. Outside
    the main thread (where signals cannot be handled) nothing is deferred.
    """
    pending = []
    if threading.current_thread() is not threading.main_thread():
        yield lambda: False
        return
    old = signal.getsignal(signal.SIGINT)
    if old in (signal.SIG_IGN, None):
        yield lambda: False
        return
    signal.signal(signal.SIGINT, lambda signum, frame: pending.append(signum))

    def taken():
        if pending:
            pending.clear()
            return True
        return False

    try:
        yield taken
    finally:
        signal.signal(signal.SIGINT, old)
        if pending and callable(old):  # one the body did not take: deliver it now
            old(signal.SIGINT, None)


_final = threading.local()


@contextmanager
def _this_thread(name, value):
    """``_final.<name>`` set to ``value`` for the body (in this thread), then restored."""
    old = getattr(_final, name, None)
    setattr(_final, name, value)
    try:
        yield
    finally:
        setattr(_final, name, old)


def on_final_commit(callback):
    """Call ``callback()`` (no arguments) after the commits marked by :func:`final_commit` in the body.

    The command line passes the callback that tells its Ctrl-C handler the
    outputs are in place (a Ctrl-C after that no longer reports "nothing was
    written"); nesting replaces the callback for the body.
    """
    return _this_thread("callback", callback)


def final_commit():
    """Mark the commits made in the body as a command's last step (see :func:`on_final_commit`)."""
    return _this_thread("on", True)


def after_commit():
    """Called by every commit (:func:`skcluster.io.atomic.commit_files`): a final one calls :func:`committed`."""
    if getattr(_final, "on", False):
        committed()


def committed():
    """Tell the :func:`on_final_commit` callback, if any, that the outputs are in place."""
    callback = getattr(_final, "callback", None)
    if callback is not None:
        callback()


class CommandInterrupts:
    """Ctrl-C (SIGINT) stops the whole command, even inside a network's training.

    skorch's ``NeuralNet.fit`` catches ``KeyboardInterrupt`` and returns as
    if training had ended, so an ensemble would go on with its next member
    and save a worse model. While a command runs, SIGINT sets a flag and
    raises ``KeyboardInterrupt`` as usual; once the flag is set, every skorch
    callback notification (the first comes right after skorch's catch)
    raises ``KeyboardInterrupt`` again, so the interrupt reaches the command
    line whatever the estimator code does in between.

    Once the command's outputs are in place (its last commit, see
    :func:`skcluster.io.atomic.final_commit`), a Ctrl-C no longer stops it: the
    work is done and is kept. With ``keep_ignoring`` (the program itself,
    about to exit), SIGINT stays ignored after a successful command, so that
    the interpreter's shutdown cannot turn a finished run into a traceback.
    """

    def __init__(self, keep_ignoring=False):
        self.flag = False
        self.committed = False
        self.keep_ignoring = keep_ignoring
        self._old = None
        self._patched = None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._old = signal.getsignal(signal.SIGINT)
            signal.signal(signal.SIGINT, self._handler)
        self._hook = on_final_commit(self._committed)
        self._hook.__enter__()
        return self

    def _committed(self):
        self.committed = True

    def _handler(self, signum, frame):
        if self.committed:
            return  # the outputs are written: let the command finish
        self.flag = True
        self._stop_skorch()
        raise KeyboardInterrupt

    def _stop_skorch(self):
        net = sys.modules.get("skorch.net")
        if net is None or self._patched is not None:
            return
        cls = net.NeuralNet
        original = cls.__dict__["notify"]
        guard = self

        def notify(self, *args, **kwargs):
            if guard.flag:
                raise KeyboardInterrupt
            return original(self, *args, **kwargs)

        cls.notify = notify
        self._patched = (cls, original)

    def __exit__(self, exc_type, exc, tb):
        self._hook.__exit__(None, None, None)
        if self._patched is not None:
            cls, original = self._patched
            cls.notify = original
            self._patched = None
        if self._old is not None:
            if self.keep_ignoring and exc_type is None:
                signal.signal(signal.SIGINT, signal.SIG_IGN)
            else:
                signal.signal(signal.SIGINT, self._old)
            self._old = None
        return False
