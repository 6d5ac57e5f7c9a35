"""Remote consoles: VNC (and later SPICE) protocol clients, free of Qt."""
