"""Container logs: the log configuration (``parse_log_config``) and reading the json-file log
the shim writes (``read_logs``), with docker's semantics."""
from pyrunc.engine.logger.config import LogConfig, parse_human_size, parse_log_config
from pyrunc.engine.logger.jsonfile import LogMessage, read_logs

__all__ = ["LogConfig", "LogMessage", "parse_human_size", "parse_log_config", "read_logs"]
