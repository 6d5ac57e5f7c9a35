"""The test lab: a real libvirtd, a tiny QEMU guest, and a private daemon to kill."""
