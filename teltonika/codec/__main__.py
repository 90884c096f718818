"""``python -m teltonika.codec``: the teltonika-decode tool."""

import sys

from teltonika.codec.cli import main

sys.exit(main())
