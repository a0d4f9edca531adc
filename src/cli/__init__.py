"""pydocker: a docker-style client of the Engine API served by pydockerd."""
