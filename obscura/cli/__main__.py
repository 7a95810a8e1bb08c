import sys

from obscura.cli.main import main

sys.exit(main())
