from runner.main import main

# Guarded: the spawn and forkserver start methods import the main module in each child.
if __name__ == "__main__":
    raise SystemExit(main())
