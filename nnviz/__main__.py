"""``python -m nnviz``: the command line."""

import sys

from nnviz.cli import main

sys.exit(main())
