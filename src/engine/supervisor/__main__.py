"""``python -m pyrunc.engine.supervisor [--root ROOT] [--exec-root DIR] [--boot]``: run a
supervisor over an engine root until SIGTERM or SIGINT (what the daemon will do in-process)."""
from __future__ import annotations

import argparse
import signal
import sys

from pyrunc import errors
from pyrunc.engine.daemon import DEFAULT_ROOT, Engine
from pyrunc.engine.supervisor.supervisor import Supervisor


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pyrunc.engine.supervisor",
                                     description="restart policies and health checks")
    parser.add_argument("--root", default=DEFAULT_ROOT)
    parser.add_argument("--exec-root", default=None)
    parser.add_argument("--boot", action="store_true",
                        help="apply dockerd's start-up rules to stopped containers")
    args = parser.parse_args(argv)
    try:
        supervisor = Supervisor(Engine(args.root, exec_root=args.exec_root), boot=args.boot)
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: supervisor.request_stop())
        supervisor.run()
    except errors.PyruncError as e:
        print("supervisor: %s" % e, file=sys.stderr)
        return e.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
