"""``python -m hdi.cli`` runs the ``hdi`` command."""

from hdi.cli.app import main

main()
