"""Layers: apply a (compressed) tar onto a directory safely, and write trees back as tars."""
from pyrunc.engine.layers.apply import LayerError, LayerTooLarge, Result, apply_layer
from pyrunc.engine.layers.compression import decompressed, detect
from pyrunc.engine.layers.diff import write_overlay_diff, write_tree, write_tree_diff

__all__ = ["LayerError", "LayerTooLarge", "Result", "apply_layer", "decompressed", "detect",
           "write_overlay_diff", "write_tree", "write_tree_diff"]
