"""`python -m eksight.config FILE`: validate a deployment config offline; exit 1 with every problem, 0 when valid.

deploy.sh runs it before its first AWS call (the CLI is not installed there, only the CDK app's dependencies).
"""

import sys

from eksight.config.loading import ConfigError, load

if len(sys.argv) != 2:
    sys.exit("usage: python -m eksight.config FILE")
try:
    deployment = load(sys.argv[1])
except ConfigError as error:
    sys.exit(str(error))
print(f"{sys.argv[1]}: valid ({len(deployment.regions)} region{'s' if len(deployment.regions) != 1 else ''})")
