"""``python -m localaws [--host H] [--port N]``: run the local AWS in the foreground.

Prints exactly one line on stdout, ``listening on HOST:PORT``, once the socket is bound
(``--port 0`` picks a free port and prints it); everything else goes to stderr (or to
``--log-file``). Stops cleanly on SIGTERM/SIGINT, and with ``--exit-on-stdin-eof`` also
when the parent closes our stdin (so a test harness that dies leaves no server behind).
"""
from __future__ import annotations

import argparse
import os
import signal
import sys
import threading


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m localaws", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 (default) picks a free port")
    parser.add_argument("--log-requests", action="store_true", help="log every request to stderr")
    parser.add_argument("--log-file", help="send stderr (logs) to this file")
    parser.add_argument("--pid-file", help="write our pid here once listening (removed on exit)")
    parser.add_argument("--exit-on-stdin-eof", action="store_true",
                        help="stop when stdin reaches end of file (the parent went away)")
    args = parser.parse_args(argv)

    if args.log_file:
        fd = os.open(args.log_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(fd, 2)
        os.close(fd)

    if args.port:
        _check_port_free(args.host, args.port)

    from . import server

    srv = server.make(args.host, args.port, log_requests=args.log_requests)
    host, port = srv.server_address[:2]
    if args.pid_file:
        with open(args.pid_file, "w") as f:
            f.write(f"{os.getpid()}\n")
    sys.stdout.write(f"listening on {host}:{port}\n")
    sys.stdout.flush()
    # moto prints warnings with print(); keep stdout to the one line above.
    sys.stdout = sys.stderr

    def stop(*_: object) -> None:
        threading.Thread(target=srv.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if args.exit_on_stdin_eof:
        def watch_stdin() -> None:
            try:
                while sys.stdin.buffer.read(4096):
                    pass
            except Exception:  # noqa: BLE001
                pass
            stop()
        threading.Thread(target=watch_stdin, daemon=True).start()
    print(f"localaws: moto server with LMI and X-Ray extensions on http://{host}:{port}", file=sys.stderr, flush=True)
    srv.serve_forever()
    srv.server_close()
    if args.pid_file:
        try:
            os.unlink(args.pid_file)
        except OSError:
            pass
    sys.stderr.flush()
    # Skip the interpreter's slow teardown of moto's module graph; nothing is left to flush.
    os._exit(0)


def _check_port_free(host: str, port: int) -> None:
    """Fail in milliseconds rather than after moto's few seconds of start-up."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as err:
            print(f"localaws: cannot listen on {host}:{port}: {err.strerror}", file=sys.stderr, flush=True)
            sys.exit(1)


if __name__ == "__main__":
    sys.exit(main())
