"""Images: the image store and the operations on images (list, remove, tag, inspect, history,
save, load, import, prune) and the built-in images."""
from pyrunc.engine.images.archive import load, save
from pyrunc.engine.images.builtin import build as build_builtin
from pyrunc.engine.images.importer import apply_changes, import_image, ingest_layer
from pyrunc.engine.images.service import Image, ImageService
from pyrunc.engine.images.store import ImageStore, parse_name, short_id
from pyrunc.engine.images.unpack import chain_ids, unpack

__all__ = ["Image", "ImageService", "ImageStore", "apply_changes", "build_builtin", "chain_ids",
           "import_image", "ingest_layer", "load", "parse_name", "save", "short_id", "unpack"]
