"""The Prometheus querier: credentials from the mounted file, answers, and secrets kept secret."""

from __future__ import annotations

import base64
import json
import logging
import os
from collections.abc import Iterator

import pytest

from hooks.app import create_app
from hooks.healthcheck.promclient import (
    Answer,
    CredentialsError,
    CredentialsFile,
    Querier,
    QueryError,
    covers,
    parse_answer,
    parse_credentials,
)
from tests.healthcheck_objects import NOW, namespace, request, rollout
from tests.prometheus_fake import FakePrometheus, error, raw, vector
from tests.test_prometheus import prom_check

TOKEN = "s3cr3t-t0ken-value"


@pytest.fixture
def prom() -> Iterator[FakePrometheus]:
    server = FakePrometheus()
    try:
        yield server
    finally:
        server.stop()


def write(path, document) -> str:
    path.write_text(json.dumps(document) if not isinstance(document, str) else document)
    return str(path)


# --- which credentials go where -----------------------------------------------------------


@pytest.mark.parametrize(
    ("prefix", "address", "ok"),
    [
        ("http://prom:9090", "http://prom:9090", True),
        ("http://prom:9090/", "http://prom:9090", True),
        ("http://prom:9090", "http://prom:9090/prometheus", True),
        ("https://mimir.example.com/prometheus", "https://mimir.example.com/prometheus/", True),
        ("https://mimir.example.com/prometheus", "https://mimir.example.com/prometheus-evil", False),
        ("https://prom.example.com", "https://prom.example.com.evil.org", False),
        ("https://prom.example.com", "http://prom.example.com", False),  # never over plain http
        ("https://prom.example.com", "https://prom.example.com:443", True),
        ("https://prom.example.com", "https://prom.example.com:8443", False),
        ("http://PROM:9090", "http://prom:9090", True),
    ],
)
def test_credentials_cover_an_address_only_on_url_boundaries(prefix, address, ok):
    assert covers(prefix, address) is ok


def test_most_specific_prefix_wins(tmp_path):
    path = write(
        tmp_path / "creds.yaml",
        """
https://mimir.example.com:
  bearerToken: general
https://mimir.example.com/tenant-a:
  basicAuth: {username: a, password: pw-a}
""",
    )
    creds = CredentialsFile(path)
    assert creds.for_address("https://mimir.example.com/tenant-a/prometheus").username == "a"
    assert creds.for_address("https://mimir.example.com/prometheus").bearer_token == "general"
    assert creds.for_address("https://other.example.com") is None
    assert TOKEN not in repr(creds.current()) and "general" not in repr(creds.current())


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ([1, 2], "must be a mapping"),
        ({"prom:9090": {"bearerToken": "x"}}, "is not an http(s) address"),
        ({"http://u:p@prom:9090": {"bearerToken": "x"}}, "put credentials in the entry"),
        ({"http://prom:9090": {}}, "exactly one of bearerToken or basicAuth"),
        ({"http://prom:9090": {"bearerToken": "x", "basicAuth": {}}}, "exactly one of"),
        ({"http://prom:9090": {"bearerToken": ""}}, "non-empty one-line string"),
        ({"http://prom:9090": {"bearerToken": "x", "tls": {}}}, "unknown fields ['tls']"),
        ({"http://prom:9090": {"basicAuth": {"username": "u"}}}, "string username and password"),
    ],
)
def test_malformed_credentials(document, message):
    with pytest.raises(CredentialsError) as raised:
        parse_credentials(document)
    assert message in str(raised.value)


def test_secrets_never_appear_in_credential_errors():
    with pytest.raises(CredentialsError) as raised:
        parse_credentials({"http://prom:9090": {"bearerToken": TOKEN + "\nmore"}})
    assert TOKEN not in str(raised.value)


def test_unusable_file_at_start_refuses_to_start(tmp_path):
    bad = write(tmp_path / "bad.yaml", "{not yaml: [")
    with pytest.raises(CredentialsError, match="not valid YAML or JSON"):
        create_app(
            actuator=object(), environ={"HOOK_AUTH_DISABLED": "true", "PROMETHEUS_CREDENTIALS_FILE": bad}
        )
    (tmp_path / "dir.yaml").mkdir()
    with pytest.raises(CredentialsError, match="cannot read"):
        create_app(
            actuator=object(),
            environ={"HOOK_AUTH_DISABLED": "true", "PROMETHEUS_CREDENTIALS_FILE": str(tmp_path / "dir.yaml")},
        )


def test_absent_file_means_no_credentials_until_it_appears(tmp_path):
    """The Secret is optional: its volume is empty until an operator creates it."""
    path = tmp_path / "credentials.yaml"
    creds = CredentialsFile(str(path))
    assert creds.for_address("http://prom:9090") is None
    write(path, {"http://prom:9090": {"bearerToken": "late"}})
    assert creds.for_address("http://prom:9090").bearer_token == "late"
    path.unlink()
    assert creds.for_address("http://prom:9090") is None


def test_file_is_reread_when_it_changes_and_a_bad_change_keeps_the_last_good(tmp_path):
    path = tmp_path / "creds.json"
    write(path, {"http://prom:9090": {"bearerToken": "one"}})
    creds = CredentialsFile(str(path))
    assert creds.for_address("http://prom:9090").bearer_token == "one"
    write(path, {"http://prom:9090": {"bearerToken": "rotated-token"}})
    os.utime(path, ns=(1, 1))  # a different mtime, whatever the file system's resolution
    assert creds.for_address("http://prom:9090").bearer_token == "rotated-token"
    write(path, "[1, 2, 3, 4]")
    os.utime(path, ns=(2, 2))
    assert creds.for_address("http://prom:9090").bearer_token == "rotated-token"
    assert creds.last_error is not None and "must be a mapping" in creds.last_error


def test_secret_volume_symlink_swap_is_seen(tmp_path):
    """Kubernetes updates a Secret volume by pointing the ..data symlink at a new directory."""
    for version, token in (("v1", "first"), ("v2", "second")):
        (tmp_path / version).mkdir()
        write(tmp_path / version / "credentials.yaml", {"http://prom:9090": {"bearerToken": token}})
    (tmp_path / "..data").symlink_to("v1")
    (tmp_path / "credentials.yaml").symlink_to("..data/credentials.yaml")
    creds = CredentialsFile(str(tmp_path / "credentials.yaml"))
    assert creds.for_address("http://prom:9090").bearer_token == "first"
    (tmp_path / "..data_tmp").symlink_to("v2")
    os.replace(tmp_path / "..data_tmp", tmp_path / "..data")
    assert creds.for_address("http://prom:9090").bearer_token == "second"


# --- queries with and without credentials -------------------------------------------------


def test_bearer_token_is_sent_only_to_the_configured_address(prom, tmp_path):
    path = write(tmp_path / "c.json", {prom.address: {"bearerToken": TOKEN}})
    querier = Querier(CredentialsFile(path), cache_ttl=0)
    prom.reply = vector(1)
    assert querier.query(prom.address, "up", {}, NOW) == Answer((1.0,))
    assert prom.requests[-1].headers["authorization"] == f"Bearer {TOKEN}"
    other = prom.address.replace("127.0.0.1", "localhost")  # the same server, another address
    querier.query(other, "up", {}, NOW)
    assert "authorization" not in prom.requests[-1].headers


def test_basic_auth(prom, tmp_path):
    path = write(
        tmp_path / "c.json", {prom.address: {"basicAuth": {"username": "reader", "password": TOKEN}}}
    )
    Querier(CredentialsFile(path), cache_ttl=0).query(prom.address, "up", {}, NOW)
    expected = base64.b64encode(f"reader:{TOKEN}".encode()).decode()
    assert prom.requests[-1].headers["authorization"] == f"Basic {expected}"


def test_rejected_credentials(prom, tmp_path):
    path = write(tmp_path / "c.json", {prom.address: {"bearerToken": TOKEN}})
    prom.reply = raw(403, f"token {TOKEN} is not allowed".encode())
    outcome = Querier(CredentialsFile(path), cache_ttl=0).query(prom.address, "up", {}, NOW)
    assert outcome == QueryError("Prometheus answered HTTP 403 (credentials rejected)", outcome.detail)
    assert TOKEN not in outcome.detail  # an echoed secret is scrubbed before any log sees it


def test_no_secret_in_status_or_logs(prom, tmp_path, caplog):
    path = write(tmp_path / "c.json", {prom.address: {"bearerToken": TOKEN}})
    app = create_app(
        clock=lambda: NOW,
        actuator=object(),
        environ={"HOOK_AUTH_DISABLED": "true", "PROMETHEUS_CREDENTIALS_FILE": path},
    )
    client = app.test_client()
    check = prom_check(prom.address, queryErrorTolerance="0s")
    body = request(check, rollout(tag="1.0.0"), namespace("team"))
    prom.reply = error(401, "unauthorized", f"bad token {TOKEN}")
    with caplog.at_level(logging.DEBUG):
        answer = client.post("/healthcheck/sync", json=body).get_json()
    assert prom.requests[-1].headers["authorization"] == f"Bearer {TOKEN}"
    assert answer["status"]["queryErrorSince"]
    logged = " ".join(f"{r.getMessage()} {getattr(r, 'fields', '')}" for r in caplog.records)
    assert "Prometheus answered HTTP 401 (credentials rejected)" in logged
    assert TOKEN not in logged
    assert TOKEN not in json.dumps(answer)


def test_good_answers_are_cached_briefly_errors_are_not(prom):
    querier = Querier(cache_ttl=60)
    prom.reply = vector(1)
    querier.query(prom.address, "up", {}, NOW)
    querier.query(prom.address, "up", {}, NOW)
    assert len(prom.requests) == 1
    querier.query(prom.address, "up", {"X-Scope-OrgID": "b"}, NOW)  # another question
    assert len(prom.requests) == 2
    prom.reply = raw(503, b"down")
    querier.query(prom.address, "down", {}, NOW)
    querier.query(prom.address, "down", {}, NOW)
    assert len(prom.requests) == 4


def test_an_address_that_does_not_answer_is_left_alone_briefly(prom):
    querier = Querier(cache_ttl=0, timeout=0.5)
    prom.reply = vector(1)
    prom.slow_once = 1.0
    first = querier.query(prom.address, "up", {}, NOW)
    assert first == QueryError("Prometheus did not answer within 0.5s", "ReadTimeout", transport=True)
    assert querier.query(prom.address, "other", {}, NOW) == first  # not asked again
    assert len(prom.requests) == 1
    assert Querier(cache_ttl=0, outage_backoff=0).query(prom.address, "up", {}, NOW) == Answer((1.0,))


# --- answers, row by row ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "body", "outcome"),
    [
        (200, vector("1", "NaN", "+Inf").body, Answer((1.0, float("nan"), float("inf")))),
        (200, b'{"status":"success","data":{"resultType":"vector","result":[]}}', Answer(())),
        (200, b'{"status":"success","data":{"resultType":"string","result":[1,"x"]}}', None),
        (200, b'{"status":"error","errorType":"x","error":"y"}', None),
        (200, b"[]", None),
        (503, b"", QueryError("Prometheus answered HTTP 503", "")),
    ],
)
def test_parse_answer(code, body, outcome):
    parsed = parse_answer(code, body)
    if outcome is None:
        assert isinstance(parsed, QueryError)
    elif isinstance(outcome, Answer):
        assert isinstance(parsed, Answer)
        assert [repr(v) for v in parsed.values] == [repr(v) for v in outcome.values]
    else:
        assert parsed == outcome
