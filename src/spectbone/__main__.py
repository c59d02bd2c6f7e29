import sys

from spectbone.cli import main

sys.exit(main())
