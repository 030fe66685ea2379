"""A hook app for the server tests (tests/test_admission.py): `/test/sleep` sleeps as asked.

Served by gunicorn with gunicorn.conf.py exactly like hooks.app:app. Each computed request
appends its `id` to the file named by $SLOW_APP_LOG, so a test can tell which requests
were computed at all.
"""

from __future__ import annotations

import os
import time
from typing import Any

from hooks.app import HookContext, create_app


def sleep(body: Any, ctx: HookContext) -> dict:
    with open(os.environ["SLOW_APP_LOG"], "a", encoding="utf-8") as log:
        log.write(f"{body['id']}\n")
    time.sleep(float(body.get("seconds", 0)))
    return {"status": {"id": body["id"]}, "children": []}


app = create_app(extra_hooks={"/test/sleep": sleep})
