"""The user model of ``load_model`` for Locust (FastHttpUser), for ``bench generators``.

Same requests (``load_model.request_for``), same exponential think time; Locust's own loop
measures each request from when it sent it. Settings come from the environment:
``TRUELABEL_LOAD_TARGETS`` (a JSON file of ``Targets``), ``TRUELABEL_LOAD_MIX`` and
``TRUELABEL_LOAD_THINK``.
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

from locust import task
from locust.contrib.fasthttp import FastHttpUser

from truelabel_db.bench.load_model import Targets, request_for

TARGETS = Targets(**json.loads(Path(os.environ["TRUELABEL_LOAD_TARGETS"]).read_text()))
MIX = os.environ.get("TRUELABEL_LOAD_MIX", "read")
THINK = float(os.environ.get("TRUELABEL_LOAD_THINK", "5"))


class Person(FastHttpUser):
    def on_start(self) -> None:
        self.rng = random.Random()
        if token := os.environ.get("TRUELABEL_LOAD_TOKEN"):   # brand data and the queue need a key
            self.client.auth_header = f"Bearer {token}"

    def wait_time(self) -> float:
        return self.rng.expovariate(1 / THINK)

    @task
    def one_request(self) -> None:
        method, path, body = request_for(MIX, TARGETS, self.rng)
        self.client.request(method, path, json=body, name=path.split("?")[0].rsplit("/", 1)[0] or path)
