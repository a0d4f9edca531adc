"""Content-addressed storage of blobs (layers, configs, manifests) and its garbage collector."""
from pyrunc.engine.content.store import (ContentStore, Info, Lease, Writer, digest_bytes,
                                         parse_digest)
from pyrunc.engine.content.gc import collect

__all__ = ["ContentStore", "Info", "Lease", "Writer", "collect", "digest_bytes", "parse_digest"]
