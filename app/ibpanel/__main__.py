from ibpanel.cli import main

raise SystemExit(main())
