"""``python -m casework`` runs the operator CLI."""

from casework._cli import main

main()
