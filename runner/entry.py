"""The `mprun` console script's entry point, which imports nothing until it is called.

Under spawn and forkserver every child re-runs the parent's main script (here, the one pip
wrote for `mprun`) to rebuild `__main__`; importing the whole command line there would cost each
child tens of milliseconds for nothing.
"""


def main() -> int:
    """Run the `mprun` command line."""
    from runner.main import main as command_line

    return command_line()
