"""Starts moto on a free loopback port and prints `READY <port>` once it answers.

It exits when its parent goes away (stdin reaches EOF or the parent pid changes), so
an emulator started by a test or by shop-local can never outlive its starter, even
when that one is killed without a chance to clean up.
"""

import argparse
import os
import sys
import threading
import time

import waitress
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodbstreams.models import DynamoDBStreamsBackend
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app


def roll_back_transactions_in_place() -> None:
    """Makes a cancelled TransactWriteItems undo exactly its own writes, cheaply.

    moto backs every transaction up by deep-copying each table it names - all its items
    and its whole stream shard, once per item of the transaction - and rolls a cancelled
    one back by swapping the tables for those copies. Two defects follow. The copy costs
    what the table holds, so every transaction gets slower as the tables fill (a run of
    a hundred orders spent most of moto's time copying, and grew it to 2 GB). And a
    stream reader's shard iterator still points at the swapped-out table's shard, which
    keeps the cancelled writes' records and never sees another one: the relay would
    publish events of transactions that never happened, then nothing.

    Here moto's backup is skipped (the table itself stands for its copy, so its own
    roll-back swaps nothing), and only what the transaction may write is saved: the
    items at its keys, and the length of each table's stream shard. A cancelled
    transaction gets those items back and its stream records cut off. Sound because
    every DynamoDB operation holds one lock (serialise_dynamodb): nothing else writes
    while a transaction runs.
    """
    import copy

    from moto.dynamodb import models
    from moto.dynamodb.models.dynamo_type import DynamoType
    from moto.dynamodb.models.table import Table

    class TablesAreTheirOwnBackup:
        @staticmethod
        def deepcopy(value, *args, **kwargs):
            if isinstance(value, Table):
                return value
            return copy.deepcopy(value, *args, **kwargs)

        def __getattr__(self, name):
            return getattr(copy, name)

    models.copy = TablesAreTheirOwnBackup()

    def written_keys(backend, transact_items):
        for entry in transact_items:
            _, operation = next(iter(entry.items()))
            table = backend.tables.get(operation.get("TableName"))
            if table is None:
                continue
            attributes = operation.get("Key") or operation.get("Item") or {}
            hash_value = attributes.get(table.hash_key_attr)
            if hash_value is None:
                continue
            range_value = attributes.get(table.range_key_attr) if table.range_key_attr else None
            yield table, DynamoType(hash_value), DynamoType(range_value) if range_value is not None else None

    def saved(table, hash_key, range_key):
        if range_key is None:
            item = table.items.get(hash_key)
        else:
            item = table.items.get(hash_key, {}).get(range_key)
        return copy.deepcopy(item)

    def restore(table, hash_key, range_key, item):
        if range_key is None:
            if item is None:
                table.items.pop(hash_key, None)
            else:
                table.items[hash_key] = item
            return
        items = table.items[hash_key]
        if item is None:
            items.pop(range_key, None)
            if not items:
                table.items.pop(hash_key, None)
        else:
            items[range_key] = item

    cancellable = models.DynamoDBBackend.transact_write_items

    def transact_write_items(self, transact_items):
        before = [(table, h, r, saved(table, h, r)) for table, h, r in written_keys(self, transact_items)]
        shard_lengths = {
            name: len(table.stream_shard.items) for name, table in self.tables.items() if table.stream_shard is not None
        }
        try:
            return cancellable(self, transact_items)
        except Exception:
            for table, hash_key, range_key, item in reversed(before):
                restore(table, hash_key, range_key, item)
            for name, length in shard_lengths.items():
                table = self.tables.get(name)
                if table is not None and table.stream_shard is not None:
                    del table.stream_shard.items[length:]
            raise

    models.DynamoDBBackend.transact_write_items = transact_write_items


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


def trim_per_request_overhead() -> None:
    """Takes the fixed costs off every request, which the functions pay on every call.

    moto's dispatcher lists its package directory (a hundred-odd isdir calls) for every
    request to find the service: with werkzeug's request log, a profile of a hundred-order
    run put a fifth of moto's time there. The listing never changes while moto runs.

    EventBridge delivers each event to each matching target through an input template
    whose eight JSONPath expressions moto compiles again every time, building a parser from
    its grammar tables: an eighth of moto's CPU in a chaos run. The expressions are the
    same few, and a compiled one is only read.
    """
    import functools

    import jsonpath_ng.ext
    from moto import backends

    backends.list_of_moto_modules = functools.cache(lambda: tuple(backends_listing()))
    jsonpath_ng.ext.parse = functools.lru_cache(maxsize=256)(jsonpath_ng.ext.parse)


def backends_listing():
    import moto

    path = os.path.dirname(moto.__file__)
    for backend in sorted(os.listdir(path)):
        if os.path.isdir(os.path.join(path, backend)) and not backend.startswith("__"):
            yield backend


def keep_alive_server(port: int, threads: int):
    """moto's WSGI application behind waitress instead of moto's own werkzeug server.

    werkzeug's development server closes every connection after one response, so each
    SDK call to moto paid a TCP connect and close, in the functions' CPU time too, which
    DynamoDB over a kept-alive connection does not. waitress keeps connections alive, and
    its threads only serve requests: idle connections wait in its event loop. An SQS long
    poll holds a thread for its whole wait, so the starter sizes the pool (`--threads`,
    emulator.rs) to the polls it keeps open plus room for requests.
    """
    return waitress.create_server(
        DomainDispatcherApplication(create_backend_app),
        host="127.0.0.1",
        port=port,
        threads=threads,
        connection_limit=2000,
        backlog=1024,
        asyncore_use_poll=True,
        ident="moto",
    )


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
    arguments = argparse.ArgumentParser(description="moto on a loopback port")
    arguments.add_argument("--port", type=int, default=0, help="0 picks a free one")
    arguments.add_argument("--threads", type=int, default=16, help="requests served at once")
    options = arguments.parse_args()
    parent = os.getppid()
    roll_back_transactions_in_place()
    serialise_dynamodb()
    trim_per_request_overhead()
    server = keep_alive_server(options.port, options.threads)
    threading.Thread(target=server.run, daemon=True).start()
    print(f"READY {server.effective_port}", flush=True)
    exit_with_parent(parent)


if __name__ == "__main__":
    main()
