"""The ``skcluster`` command line."""

from __future__ import annotations

import argparse
import sys

from . import __version__


def build_parser():
    parser = argparse.ArgumentParser(
        prog="skcluster",
        description="Galaxy-cluster masses from eROSITA data with deep ensembles of CNNs.",
    )
    parser.add_argument("--version", action="version", version=f"skcluster {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.add_parser("demo", help="(not implemented yet) the end-to-end demo on the built-in mock")
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    if args.command == "demo":
        print(
            "skcluster demo is not implemented yet: it arrives with the command-line "
            "issue (#7). Nothing was run.",
            file=sys.stderr,
        )
        return 2
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
