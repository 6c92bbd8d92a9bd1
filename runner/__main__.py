# Guarded, and importing nothing at the top: the spawn and forkserver start methods run the main
# module again in each child.
if __name__ == "__main__":
    import sys

    # `python -m runner` puts the current folder first on sys.path, where a user's `yaml.py`
    # would be imported in place of PyYAML by mprun itself: it goes last instead, where it
    # still finds mprun run from its source tree. (Workflow code gets the folders its
    # `pythonpath` names, first.)
    if sys.path and not getattr(sys.flags, "safe_path", False):  # -P (3.11) leaves it out itself
        sys.path.append(sys.path.pop(0))
    try:
        from runner.entry import main
    except KeyboardInterrupt:  # as entry.main would have it
        raise SystemExit(130) from None

    raise SystemExit(main())
