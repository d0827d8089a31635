from lpc.cli import main

raise SystemExit(main())
