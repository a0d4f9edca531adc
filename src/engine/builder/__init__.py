"""Building images from a Dockerfile and a context, as docker's classic builder does."""
