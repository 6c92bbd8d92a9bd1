# Guarded, and importing nothing at the top: the spawn and forkserver start methods run the main
# module again in each child.
if __name__ == "__main__":
    from runner.main import main

    raise SystemExit(main())
