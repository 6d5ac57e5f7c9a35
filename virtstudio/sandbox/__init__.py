"""Application sandboxes: profiles of permissions, compiled to bubblewrap, run and watched.

Qt-free, like the rest of the core.
"""
