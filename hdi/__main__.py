"""``python -m hdi`` runs the ``hdi`` command."""

from hdi.cli.app import main

main()
