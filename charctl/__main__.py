from charctl.cli import main

raise SystemExit(main())
