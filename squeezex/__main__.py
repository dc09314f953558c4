"""``python -m squeezex``: the command line (:func:`squeezex.cli.main`)."""

import sys

from .cli import main

if __name__ == "__main__":  # importing the module (autodoc, pkgutil) runs nothing
    sys.exit(main())
