"""The engine: images, containers made from images, networks, volumes, logs and pydockerd."""
