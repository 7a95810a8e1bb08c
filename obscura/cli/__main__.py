import os
import sys

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # idle OpenMP threads yield (see obscura.cli.main)

from obscura.cli.main import main

sys.exit(main())
