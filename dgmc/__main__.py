"""`python -m dgmc`: the command line, as torchrun starts it (`torchrun ... -m dgmc train ...`)."""

import sys

from .cli import main

sys.exit(main())
