from innerloop.agent.main import main

raise SystemExit(main())
