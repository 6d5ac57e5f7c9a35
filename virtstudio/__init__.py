"""VirtStudio: virtual machines, storage, networks, consoles and sandboxes in one window."""

__version__ = "0.1.0"
