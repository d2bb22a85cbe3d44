from cs3sync.cli import main

raise SystemExit(main())
