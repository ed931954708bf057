import sys

from mwaa_local.cli import main

sys.exit(main())
