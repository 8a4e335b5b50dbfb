"""``python -m immich_conformance.double``: run the Immich API double (configured by Immich's environment)."""

import sys

from immich_conformance.double.app import main

sys.exit(main())
