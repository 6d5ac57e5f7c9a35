"""Host networking over netlink (pyroute2), free of Qt."""
