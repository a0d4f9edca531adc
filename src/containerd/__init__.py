"""containerd (Docker generation 3): bundle lifecycle, the ``pyrunc`` command and shims."""
