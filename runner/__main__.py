# Guarded, and importing nothing at the top: the spawn and forkserver start methods run the main
# module again in each child.
if __name__ == "__main__":
    try:
        from runner.entry import main
    except KeyboardInterrupt:  # as entry.main would have it
        raise SystemExit(130) from None

    raise SystemExit(main())
