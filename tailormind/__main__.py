"""``python -m tailormind`` is the ``tailormind`` command."""

from tailormind.cli.main import main

main()
