"""The `charctl` console script.

Each module in charctl/commands/ adds its own subcommand through `register(subparsers)`, and sets
`func` to the function that runs it. Command modules import heavy libraries (torch, pybullet)
inside that function, so `charctl --help` stays fast.
"""

import argparse
import importlib
import pkgutil
import sys

from charctl import __version__, commands
from charctl.util.errors import CharctlError


class _Parser(argparse.ArgumentParser):
    """argparse with its usage errors on one line, like every other charctl error (exit 2)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="charctl",
        description="Motion-imitation character control on PyBullet with Advantage-Weighted Regression.",
        epilog="Run 'charctl COMMAND --help' for a command's options and an example.",
    )
    parser.add_argument("--version", action="version", version=f"charctl {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"charctl.commands.{info.name}")
        module.register(subparsers)
    return parser


def describe_os_error(err: OSError) -> str:
    """One line: the path (both, for a rename) and the system's reason."""
    paths = " -> ".join(str(p) for p in (err.filename, err.filename2) if p is not None)
    reason = err.strerror or str(err) or type(err).__name__
    return f"{paths}: {reason}" if paths else reason


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except CharctlError as err:
        print(f"charctl: error: {err}", file=sys.stderr)
        return err.exit_code
    except OSError as err:  # a read-only folder, a full disk, a file where a folder should be: name path and cause
        print(f"charctl: error: {describe_os_error(err)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("charctl: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
