"""Starts moto on a free loopback port and prints `READY <port>` once it answers.

It exits when its parent goes away (stdin reaches EOF or the parent pid changes), so
an emulator started by a test or by shop-local can never outlive its starter, even
when that one is killed without a chance to clean up.
"""

import os
import sys
import threading
import time

from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodbstreams.models import DynamoDBStreamsBackend
from moto.moto_server.threaded_moto_server import ThreadedMotoServer


def roll_back_transactions_in_place() -> None:
    """Makes a cancelled TransactWriteItems leave its tables' streams intact.

    moto rolls a cancelled transaction back by swapping each table for a deep copy taken
    when the transaction began. A stream reader's shard iterator still points at the old
    table's shard, which keeps the cancelled writes' records and never sees another one:
    the relay would publish events of transactions that never happened, then nothing.
    Here the live table objects are kept, their contents restored from moto's copies,
    and their own stream shard cut back to where it was.
    """
    cancellable = DynamoDBBackend.transact_write_items

    def transact_write_items(self, transact_items):
        live = dict(self.tables)
        shard_lengths = {
            name: len(table.stream_shard.items) for name, table in live.items() if table.stream_shard is not None
        }
        try:
            return cancellable(self, transact_items)
        except Exception:
            for name, table in live.items():
                restored = self.tables.get(name)
                if restored is None or restored is table:
                    continue
                shard = table.stream_shard
                table.__dict__.update(restored.__dict__)
                if shard is not None:
                    del shard.items[shard_lengths[name]:]
                    shard.table = table
                    table.stream_shard = shard
                self.tables[name] = table
            raise

    DynamoDBBackend.transact_write_items = transact_write_items


def serialise_dynamodb() -> None:
    """Makes every DynamoDB (and Streams) operation atomic, as the real service is.

    moto serves requests on threads and does not isolate them: a transaction whose
    condition fails restores its tables from a copy taken when it began, erasing what
    other requests committed meanwhile, and a conditional write can interleave with
    another. Concurrency tests (twenty checkouts racing for five units) would then fail
    on the emulator, not on the code. One lock around every backend operation gives
    DynamoDB's per-request atomicity; the throughput lost is moto's anyway (one Python
    process).
    """
    lock = threading.RLock()

    def locked(method):
        def call(*args, **kwargs):
            with lock:
                return method(*args, **kwargs)

        call.__name__ = method.__name__
        call.__doc__ = method.__doc__
        return call

    for backend in (DynamoDBBackend, DynamoDBStreamsBackend):
        for name, member in list(vars(backend).items()):
            if callable(member) and not name.startswith("_"):
                setattr(backend, name, locked(member))


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
    roll_back_transactions_in_place()
    serialise_dynamodb()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    _, bound = server.get_host_and_port()
    print(f"READY {bound}", flush=True)
    exit_with_parent(parent)


if __name__ == "__main__":
    main()
