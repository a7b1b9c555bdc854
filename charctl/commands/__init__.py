"""One module per `charctl` subcommand; each defines `register(subparsers)`."""

import argparse


def seed(text: str) -> int:
    """The type of a --seed option: a whole number >= 0, as numpy seeds are."""
    value = int(text)  # not a number: argparse says "invalid seed value"
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be at least 0, not {value}")
    return value
