"""The operator CLI's commands, one module per concept (cases, the desk, the trail, the service clock,
policy authoring), each a ``typer.Typer`` that ``cli.py`` at the checkout's root assembles; :mod:`.common`
holds what they share. Only the CLI imports this package."""
