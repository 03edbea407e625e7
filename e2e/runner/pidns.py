"""Run a command as PID 1 of a new PID namespace, the way a container runs its entrypoint.

    python pidns.py PROGRAM [ARGS...]

When PID 1 of a namespace dies the kernel kills every process in it, so tritonserver and its
python stubs (which the runtime starts in sessions of their own) never outlive the container,
even when the runtime is SIGKILLed. Like a container's init, PID 1 only receives the signals it
installed a handler for (SIGKILL aside): a SIGTERM that arrives before the runtime is ready to
drain is ignored until the grace period ends, as it would be in a pod.

This launcher forwards SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1 and SIGUSR2 to the command and
exits with its status (128+N when signal N killed it, as container runtimes report). It must be
started with PR_SET_PDEATHSIG; the command gets SIGKILL when the launcher dies. Needs
CAP_SYS_ADMIN (root). Standalone on purpose: it imports nothing from the repository.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys

CLONE_NEWPID = 0x20000000
PR_SET_PDEATHSIG = 1
FORWARDED = (
    signal.SIGTERM,
    signal.SIGINT,
    signal.SIGHUP,
    signal.SIGQUIT,
    signal.SIGUSR1,
    signal.SIGUSR2,
)


def main(argv: list[str]) -> int:
    if not argv:
        print("usage: pidns.py PROGRAM [ARGS...]", file=sys.stderr)
        return 2
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWPID) != 0:
        err = os.strerror(ctypes.get_errno())
        print(
            f"e2e pod runner: cannot create a PID namespace ({err}); it needs CAP_SYS_ADMIN",
            file=sys.stderr,
        )
        return 126
    launcher = os.getpid()
    child = 0
    pending: list[int] = []

    def forward(signum: int, _frame: object) -> None:
        if os.getpid() != launcher:
            return  # the forked child, before exec
        if child == 0:
            pending.append(signum)
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(child, signum)

    # Installed before fork so that no signal is lost while the child starts; exec resets them.
    for s in FORWARDED:
        signal.signal(s, forward)
    # The launcher holds the write end for its lifetime: EOF tells the child it is gone (getppid
    # can't: it is 0 for PID 1 of a namespace).
    alive_r, alive_w = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    child = os.fork()
    if child == 0:
        os.close(alive_w)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        os.set_blocking(alive_r, False)
        try:
            if os.read(alive_r, 1) == b"":  # the launcher died before prctl took effect
                os._exit(137)
        except BlockingIOError:
            pass
        os.close(alive_r)
        # Python ignores SIGPIPE and SIGXFSZ; exec keeps ignored signals ignored.
        for s in (signal.SIGPIPE, signal.SIGXFSZ):
            signal.signal(s, signal.SIG_DFL)
        try:
            os.execv(argv[0], argv)
        except OSError as e:
            print(f"e2e pod runner: exec {argv[0]}: {e.strerror}", file=sys.stderr)
            os._exit(127)
    os.close(alive_r)
    for signum in pending:
        forward(signum, None)
    _, status = os.waitpid(child, 0)  # retried on EINTR (PEP 475)
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.WEXITSTATUS(status)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
