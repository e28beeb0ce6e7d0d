import sys

from cardpos.cli import main

sys.exit(main())
