"""libcontainer (Docker generation 2): turn an OCI runtime config into an isolated process."""
