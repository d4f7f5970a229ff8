"""`python -m backdrop`: the same as the `backdrop` command."""

import sys

from backdrop.cli import main

if __name__ == "__main__":
    sys.exit(main())
