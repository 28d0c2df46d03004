"""The LINE SDK is imported when a LINE adapter first uses it, not with ``channels.line``:
the registry imports every channel module for its spec, and the web app and the demo need
LINE's spec without its SDK (#19).  Checked with the modules a real process imported, so no
timing is involved."""

from __future__ import annotations

import os
import subprocess
import sys

CHECK = """
import sys
from channels.registry import specs
import marketing.web.app
kinds = [spec.kind for spec in specs()]
print("line" in kinds, any(n == "linebot" or n.startswith("linebot.") for n in sys.modules))
from channels import line
line._api_errors()
print(any(n.startswith("linebot.v3.messaging") for n in sys.modules))
"""


def test_the_web_app_and_every_spec_load_without_the_line_sdk_until_it_is_used() -> None:
    done = subprocess.run(
        [sys.executable, "-c", CHECK], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split() == ["True", "False", "True"]


WORKER = """
import sys
import tasks
from channels.line import SDK_MODULES
print(any(n == "linebot" or n.startswith("linebot.") for n in sys.modules))
from celery.signals import worker_init
worker_init.send(sender=None)  # what Celery's worker sends in its main process, before its pool
print(all(n in sys.modules for n in SDK_MODULES))
"""


def test_the_worker_imports_the_line_sdk_before_its_pool_forks_and_the_tasks_do_not() -> None:
    """``tasks`` (imported by whatever sends tasks) leaves the SDK out; the worker's
    ``worker_init`` imports it in the main process, so forked pool processes share it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MARKETING_")}
    done = subprocess.run(
        [sys.executable, "-c", WORKER],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split() == ["False", "True"]
