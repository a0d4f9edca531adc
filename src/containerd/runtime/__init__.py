"""The ``pyrunc`` command: runc's command line over pyrunc.libcontainer, which engines call."""
