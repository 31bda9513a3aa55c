"""``python -m nnviz``: the command line."""

import sys

from nnviz.cli.main import main

sys.exit(main())
