"""Qt-free core: libvirt connections, entities, jobs and statistics.

Nothing under this package may import Qt; the UI layer in ``virtstudio.ui``
adapts these objects to Qt models and signals.
"""
