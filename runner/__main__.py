# Guarded, and importing nothing at the top: the spawn and forkserver start methods run the main
# module again in each child.
if __name__ == "__main__":
    import sys

    # `python -m runner` puts the current folder first on sys.path, where a user's `yaml.py`
    # would be imported in place of PyYAML by mprun itself: the console script has no such
    # entry, and neither does this. (Workflow code gets the folders its `pythonpath` names.)
    if sys.path and not getattr(sys.flags, "safe_path", False):  # -P (3.11) leaves it out itself
        del sys.path[0]
    try:
        from runner.entry import main
    except KeyboardInterrupt:  # as entry.main would have it
        raise SystemExit(130) from None

    raise SystemExit(main())
