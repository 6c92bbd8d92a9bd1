from runner.main import main

raise SystemExit(main())
