"""What the scripts under eval/ share: where the full archive and index are, and the parts of their command lines.

Standard library only, and nothing of the package is imported here: `dump_rankings.py` runs against whichever
checkout PYTHONPATH names, while the benchmarks call `use_checkout` to run this one's from anywhere.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent  # this checkout
ARCHIVE = ROOT.parent / "shared" / "archive"
FULL_INDEX = ROOT / "models" / "full"


def use_checkout() -> None:
    """Import this checkout's package, wherever the script is run from."""
    sys.path.insert(0, str(ROOT))


def parser(doc: str | None, archive: bool = False) -> argparse.ArgumentParser:
    """A script's parser: its docstring as the description, as written; --index (default: the full index) and,
    with `archive`, --archive (default: the full archive)."""
    made = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    return _with_index(made, archive)


def subcommands(doc: str | None) -> tuple[argparse.ArgumentParser, Any]:
    """A script's parser of subcommands (`args.command`, required), and the action that adds them (`command`)."""
    made = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    return made, made.add_subparsers(dest="command", required=True)


def command(sub: Any, name: str, archive: bool = False) -> argparse.ArgumentParser:
    """The subcommand `name` with --index and, with `archive`, --archive (as `parser`)."""
    return _with_index(sub.add_parser(name), archive)


def _with_index(parser: argparse.ArgumentParser, archive: bool) -> argparse.ArgumentParser:
    if archive:
        parser.add_argument("--archive", type=Path, default=ARCHIVE)
    parser.add_argument("--index", type=Path, default=FULL_INDEX)
    return parser
