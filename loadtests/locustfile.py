"""Locust scenarios: learners (warm, cold and new) and curriculum designers against a running API.

    locust -f loadtests/locustfile.py --headless -u 60 -r 12 -t 60s --host http://127.0.0.1:8000 \\
        --p99-ms 500 --max-error-rate 0.01

Tokens are minted with the API's secret (LESSONLOOP_TOKEN_SECRET, or the development default).
The run exits non-zero when a threshold is exceeded (loadtests/thresholds.py). `make bench` seeds
learners with history and runs this file as part of its report.
"""

from loadtests import thresholds
from loadtests.designers import Designer
from loadtests.learners import Learner

__all__ = ["Designer", "Learner", "thresholds"]
