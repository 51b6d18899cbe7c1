"""``python -m chat`` is ``chat``."""

from .cli import main

main()
