"""Entry point for `pulumi up --stack <env>`: load the typed config, build the estate, export the contract."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from taly_platform.program import main  # noqa: E402

main()
