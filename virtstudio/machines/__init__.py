"""Virtual machine creation without Qt: specs, checks, XML and host capabilities."""
