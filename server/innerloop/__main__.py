from innerloop.cli import main

raise SystemExit(main())
