"""``python -m nectar``: the same as the ``nectar`` command."""

from nectar.cli import main

main()
