"""mprun: run Python multiprocessing graphs described in YAML.

The package root stays light: child processes import from it, so nothing heavy lives here.
"""

__version__ = "0.1.0"
