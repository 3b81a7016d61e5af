"""``python -m sdesim.cli``: the same as the ``sdesim`` command."""

from ._main import main

main()
