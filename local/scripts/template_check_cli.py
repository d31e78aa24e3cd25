"""The command line the template checks share.

    SCRIPT TEMPLATE...   check templates; print one line per finding; exit 1 on any
    SCRIPT --self-test   prove the check still catches its seeded defects; exit 1 if not
"""

from __future__ import annotations

from typing import Callable, Iterable


def run(argv: list[str], usage: str, check: Callable[[str], Iterable[str]], self_test: Callable[[], int]) -> int:
    if argv == ["--self-test"]:
        return self_test()
    if not argv or any(a.startswith("-") for a in argv):
        import sys

        print(usage, file=sys.stderr)
        return 2
    failed = False
    for path in argv:
        for finding in check(path):
            print(f"{path}: {finding}")
            failed = True
    return 1 if failed else 0
