import sys

from ankang_cli import main

sys.exit(main())
