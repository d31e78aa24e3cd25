"""Starts moto on a free loopback port and prints `READY <port>` once it answers.

It exits when its parent goes away (stdin reaches EOF or the parent pid changes), so
an emulator started by a test or by shop-local can never outlive its starter, even
when that one is killed without a chance to clean up.
"""

import os
import sys
import threading
import time

from moto.moto_server.threaded_moto_server import ThreadedMotoServer


def exit_with_parent(parent: int) -> None:
    def watch_stdin() -> None:
        try:
            while sys.stdin.buffer.read(4096):
                pass
        except Exception:
            pass
        os._exit(0)

    threading.Thread(target=watch_stdin, daemon=True).start()
    while os.getppid() == parent:
        time.sleep(0.2)
    os._exit(0)


def main() -> None:
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    parent = os.getppid()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    _, bound = server.get_host_and_port()
    print(f"READY {bound}", flush=True)
    exit_with_parent(parent)


if __name__ == "__main__":
    main()
