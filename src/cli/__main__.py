"""``python -m pyrunc.cli`` runs pydocker."""
from .main import entry

entry()
