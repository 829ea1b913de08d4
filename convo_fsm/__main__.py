import sys

from convo_fsm.cli import main

sys.exit(main())
