"""`python -m onegrid_departments URL --secret S` runs the webhook conformance checker."""

import sys

from onegrid_departments.check_webhook import main

sys.exit(main())
