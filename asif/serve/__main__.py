"""`python -m asif.serve --table URI ...`: the same as `asif serve`."""

import argparse
import sys

from asif.serve.cli import add_serve_parser


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m asif.serve")
    sub = parser.add_subparsers(dest="command")
    add_serve_parser(sub)
    args = parser.parse_args(["serve", *sys.argv[1:]])
    args.run(args)


if __name__ == "__main__":
    main()
