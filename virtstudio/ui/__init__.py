"""Qt layer: models that adapt the core, and widgets that present them."""
