"""Dockerfiles as docker's classic builder reads them: ``parse`` (the parser and the checks of
each instruction) and ``words`` (variable substitution, docker's shell lexer).

How ``Instruction.args`` holds each instruction's arguments (as docker's parser splits them):

- JSON (exec) form of RUN, CMD, ENTRYPOINT, SHELL, ADD, COPY, VOLUME, HEALTHCHECK CMD: the
  array's strings, ``json`` true;
- shell form of RUN, CMD, ENTRYPOINT, SHELL: ``[the rest of the line]``;
- ENV, LABEL: ``[key1, value1, key2, value2, ...]`` with quotes still in (the builder expands
  each with ``words.expand``, which removes them); ARG: the words, ``["NAME=default", "OTHER"]``;
- ADD, COPY, VOLUME, EXPOSE, FROM (shell form): the words split at whitespace;
- MAINTAINER, USER, WORKDIR, STOPSIGNAL: ``[the rest of the line]``;
- HEALTHCHECK: ``["CMD", ...the command as above]`` or ``["NONE"]``;
- ONBUILD: ``[trigger's cmd, ...trigger's args]``, the trigger itself in ``trigger`` and the
  text docker stores in the image in ``expression``.

``flags`` are the leading ``--name=value`` words (checked against the instruction's known
flags); ``Instruction.flag(name)`` reads one.
"""
from __future__ import annotations

from pyrunc.engine.builder.dockerfile.parser import (
    EXPANDED, FLAGS, INSTRUCTIONS, Dockerfile, Instruction, ParseError, parse, parse_duration,
    parse_instruction)
from pyrunc.engine.builder.dockerfile.words import ExpandError, expand, expand_words

__all__ = ["EXPANDED", "FLAGS", "INSTRUCTIONS", "Dockerfile", "ExpandError", "Instruction",
           "ParseError", "expand", "expand_words", "parse", "parse_duration", "parse_instruction"]
