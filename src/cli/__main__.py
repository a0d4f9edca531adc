"""``python -m pyrunc.cli`` runs pydocker."""
import sys

from .main import main

sys.exit(main())
