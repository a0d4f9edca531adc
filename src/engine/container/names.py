"""Container names: docker's validation rule and random ``adjective_surname`` names.

The word lists are this project's own: adjectives of temperament and surnames of people who
built operating systems, networks and programming languages.
"""
from __future__ import annotations

import secrets

from pyrunc.errors import InvalidArgument

NAME_CHARS = "[a-zA-Z0-9][a-zA-Z0-9_.-]"
_FIRST = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
_REST = _FIRST | frozenset("_.-")

ADJECTIVES = (
    "agile", "amiable", "ardent", "bold", "brave", "breezy", "bright", "calm", "candid",
    "careful", "cheerful", "clever", "cosmic", "curious", "daring", "deft", "diligent", "eager",
    "earnest", "elated", "fearless", "fervent", "gallant", "gentle", "glad", "graceful",
    "hardy", "hearty", "humble", "jolly", "keen", "kind", "lively", "loyal", "lucid", "merry",
    "mellow", "modest", "nimble", "noble", "patient", "placid", "plucky", "polite", "proud",
    "quiet", "quirky", "radiant", "serene", "sincere", "spry", "steady", "sturdy", "sunny",
    "tender", "tidy", "valiant", "vivid", "witty", "zealous",
)

SURNAMES = (
    "allen", "backus", "bartik", "berners", "bosack", "cerf", "clarke", "codd", "conway",
    "corbato", "dijkstra", "engelbart", "estrin", "feigenbaum", "floyd", "goldberg", "gray",
    "hamming", "hartmanis", "hoare", "holberton", "hopper", "huffman", "iverson", "kahn",
    "karp", "kay", "kernighan", "knuth", "lamport", "lampson", "liskov", "lovelace", "mccarthy",
    "metcalfe", "milner", "minsky", "naur", "nygaard", "pike", "postel", "rabin", "ritchie",
    "sammet", "shannon", "spaf", "stallman", "stonebraker", "sutherland", "tanenbaum",
    "thacker", "thompson", "torvalds", "turing", "wexelblat", "wilkes", "wirth", "wozniak",
    "yao", "zuse",
)


def valid_name(name: str) -> bool:
    """docker's rule: ``[a-zA-Z0-9][a-zA-Z0-9_.-]+`` after an optional leading ``/``."""
    if name.startswith("/"):
        name = name[1:]
    return len(name) >= 2 and name[0] in _FIRST and all(c in _REST for c in name[1:])


def normalise(name: str) -> str:
    """``/name`` of a valid name; InvalidArgument with docker's wording otherwise."""
    if not isinstance(name, str) or not valid_name(name):
        raise InvalidArgument("Invalid container name (%s), only %s are allowed"
                              % (name, NAME_CHARS))
    return name if name.startswith("/") else "/" + name


def random_name(retry: int = 0) -> str:
    """``adjective_surname``; a retry after a collision adds a digit, as docker does."""
    name = "%s_%s" % (secrets.choice(ADJECTIVES), secrets.choice(SURNAMES))
    if retry:
        name += str(secrets.randbelow(10))
    return name
