"""A worker that fails its first two attempts (a service not up yet, a flaky network) and
succeeds on the third. The count of attempts lives in a shared Value, which its restarts keep."""

from __future__ import annotations

import sys
from typing import Any


def fetch(attempts: Any, failures: int) -> None:
    with attempts.get_lock():
        attempts.value += 1
        attempt = attempts.value
    if attempt <= failures:
        print(f"attempt {attempt}: the service is not answering", file=sys.stderr)
        sys.exit(75)  # EX_TEMPFAIL
    print(f"attempt {attempt}: fetched")
