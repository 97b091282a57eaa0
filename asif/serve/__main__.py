"""`python -m asif.serve --table URI ...`: the same as `asif serve`."""

import sys

from asif.cli import main

if __name__ == "__main__":
    sys.exit(main(["serve", *sys.argv[1:]]))
