"""``python -m bench NAME [ARGS...]``: run one benchmark; ``python -m bench`` lists them.

Every benchmark is a module ``bench/<name>.py`` with a ``main(argv: list[str]) -> int`` and a
module docstring whose first line says what it measures.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
from pathlib import Path


def benchmarks() -> dict[str, str]:
    """Name -> first line of its docstring, for every module in this package with a main()."""
    found: dict[str, str] = {}
    for info in pkgutil.iter_modules([str(Path(__file__).parent)]):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"bench.{info.name}")
        if callable(getattr(module, "main", None)):
            lines = (module.__doc__ or "").strip().splitlines()
            found[info.name] = lines[0] if lines else ""
    return found


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: python -m bench NAME [ARGS...]   (NAME --help for its options)\n")
        for name, summary in sorted(benchmarks().items()):
            print(f"  {name:<14} {summary}")
        return 0
    name, rest = argv[0], argv[1:]
    if name not in benchmarks():
        print(f"python -m bench: no benchmark {name!r}; run it without arguments for the list")
        return 2
    module = importlib.import_module(f"bench.{name}")
    return int(module.main(rest) or 0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
