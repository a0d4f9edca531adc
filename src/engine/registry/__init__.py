"""The registry client: the HTTP API v2 / OCI distribution spec, auth, TLS, mirrors, login."""
from pyrunc.engine.registry.auth import Unauthorized
from pyrunc.engine.registry.client import Manifest, Registry, RegistryService, Repository
from pyrunc.engine.registry.config import AuthFile, Credentials, Endpoint, RegistryOptions

__all__ = ["AuthFile", "Credentials", "Endpoint", "Manifest", "Registry", "RegistryOptions",
           "RegistryService", "Repository", "Unauthorized"]
