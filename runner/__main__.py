# Guarded, and importing nothing at the top: the spawn and forkserver start methods run the main
# module again in each child.
if __name__ == "__main__":
    # One try around it all, the call to main included: a Ctrl-C landing on main's own first
    # instruction, before its try, is raised here. (Python checks for signals there, on a
    # function's entry, and at calls; the module's own entry is the one moment left.)
    try:
        import sys

        # `python -m runner` puts the current folder first on sys.path, where a user's `yaml.py`
        # would be imported in place of PyYAML by mprun itself: it goes last instead, where it
        # still finds mprun run from its source tree. (Workflow code gets the folders its
        # `pythonpath` names, first.)
        if sys.path and not getattr(sys.flags, "safe_path", False):  # -P (3.11) leaves it out
            sys.path.append(sys.path.pop(0))
        from runner.entry import main

        status = main()
    except KeyboardInterrupt:  # as entry.main would have it
        status = 130
    raise SystemExit(status)
