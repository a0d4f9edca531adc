"""foreground.supervise with real child processes: the supervised process's exit status survives
SIGCHLDs that arrive together (the init and another child exiting at once, as under load)."""
import os
import signal
import threading
import time

from support import exited

from pyrunc.containerd.runtime import foreground


def _child(release, hold, code):
    pid = os.fork()
    if pid == 0:
        os.close(hold)
        os.read(release, 1)         # returns at EOF, when the test closes the write end
        os._exit(code)
    return pid


def test_two_sigchld_in_one_read_keep_the_status():
    # SIGCHLD blocked in this thread (and the helper, which inherits the mask): the wake-up
    # pipe gets exactly the bytes the helper writes, both in one write.
    old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGCHLD])
    r, w = os.pipe()
    try:
        with foreground.Signals() as signals:
            init, other = _child(r, w, 7), _child(r, w, 0)

            def both_exit():
                time.sleep(0.05)    # supervise is waiting by now
                os.close(w)
                deadline = time.monotonic() + 10
                while not (exited(init) and exited(other)) and time.monotonic() < deadline:
                    time.sleep(0.001)
                os.write(signals.w, bytes([signal.SIGCHLD, signal.SIGCHLD]))

            helper = threading.Thread(target=both_exit)
            helper.start()
            try:
                assert foreground.supervise(signals, init, None) == 7
            finally:
                helper.join()
    finally:
        os.close(r)
        signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
