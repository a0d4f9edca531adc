"""One module per command group, as in docker's cli/command/<group>."""
