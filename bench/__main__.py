"""`python -m bench` (or `make bench`): run every benchmark, or the ones named."""

import importlib
import pkgutil
import sys

import bench


def main(argv):
    known = sorted(
        m.name for m in pkgutil.iter_modules(bench.__path__) if not m.name.startswith("_")
    )
    # Other arguments are for the benchmarks themselves (e.g. `replication steady`).
    names = [a for a in argv if a in known] or known
    for name in names:
        print(f"\n=== bench/{name}.py ===", flush=True)
        importlib.import_module(f"bench.{name}").main()


if __name__ == "__main__":
    main(sys.argv[1:])
