"""One module per API resource, each with ``routes(engine) -> list[Route]`` (see
pyrunc.engine.api.server)."""
