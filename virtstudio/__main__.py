from virtstudio.app import main

raise SystemExit(main())
