"""Credentials (tokens, private keys, client secrets) never show up in logs, errors or reprs."""

from __future__ import annotations

import json
import logging
import traceback
import uuid
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import SecretStr

from aios.state import BackendUnavailable, StateError, StateSettings, open_store
from aios.state.journal import pending

from .conftest import FAST_RETRY, Emulator, new_airtable_base, new_sheet_book


def _canary() -> str:
    return f"CANARY-{uuid.uuid4().hex}"


def _pem() -> tuple[str, list[str]]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    body = [line for line in pem.splitlines() if line and not line.startswith("-----")]
    return pem, body


def _assert_clean(secrets: list[str], *texts: str) -> None:
    for text in texts:
        for secret in secrets:
            assert secret not in text


def _exc_text(exc: BaseException) -> str:
    return "".join(traceback.format_exception(exc)) + repr(exc) + str(exc.args)


@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> pytest.LogCaptureFixture:
    monkeypatch.setenv("GOOGLE_SDK_PYTHON_LOGGING_SCOPE", "google")  # google-auth's own request logging
    caplog.set_level(logging.DEBUG)
    for name in ("urllib3", "requests", "google", "gspread", "pyairtable", "aios", "httpx"):
        logging.getLogger(name).setLevel(logging.DEBUG)
    return caplog


def _sheets_settings(tmp_path: Path, emu: Emulator, **kw) -> StateSettings:  # noqa: ANN003
    return StateSettings(
        backend="sheets",
        sheets_spreadsheet=new_sheet_book(emu),
        sheets_api_url=emu.url,
        journal_path=tmp_path / "journal.jsonl",
        probe_interval=60,
        **FAST_RETRY,
        **kw,
    )


def test_service_account_json_works_offline_and_key_never_leaks(
    tmp_path: Path, sheets_emulator: Emulator, debug_logs: pytest.LogCaptureFixture
) -> None:
    pem, body = _pem()
    canary = _canary()
    creds = tmp_path / "sa.json"
    creds.write_text(
        json.dumps(
            {
                "type": "service_account",
                "project_id": "aios-test",
                "private_key_id": canary,
                "private_key": pem,
                "client_email": "state@aios-test.iam.gserviceaccount.com",
                "client_id": "1234567890",
                "token_uri": f"{sheets_emulator.url}/token",
            }
        )
    )
    settings = _sheets_settings(tmp_path, sheets_emulator, sheets_credentials_file=creds)
    store = open_store("sheets", settings=settings)
    assert store.upsert("t", "k", {"a": 1}).version == 1
    assert store.get("t", "k").data == {"a": 1}
    paths = [r["path"] for r in sheets_emulator.control("GET", "requests")["requests"]]
    assert "/token" in paths  # the JWT-bearer grant went to the emulator, not to Google
    # now the token endpoint refuses: a one-line auth error, no key material anywhere
    bad = json.loads(creds.read_text()) | {"token_uri": f"{sheets_emulator.url}/no-such-token-endpoint"}
    creds2 = tmp_path / "sa2.json"
    creds2.write_text(json.dumps(bad))
    store2 = open_store("sheets", settings=settings.model_copy(update={"sheets_credentials_file": creds2}))
    with pytest.raises(StateError) as ei:
        store2.get("t", "k")
    assert "authentication failed" in str(ei.value) and "\n" not in str(ei.value)
    secrets = [canary, *body]
    _assert_clean(secrets, _exc_text(ei.value), debug_logs.text, repr(store), repr(store2), repr(settings), str(settings))
    # a broken key: one line naming the file, never its content
    bad_key = json.loads(creds.read_text()) | {"private_key": pem.replace(body[3], "X" * len(body[3]))}
    creds3 = tmp_path / "sa3.json"
    creds3.write_text(json.dumps(bad_key))
    with pytest.raises(StateError) as ei3:
        open_store("sheets", settings=settings.model_copy(update={"sheets_credentials_file": creds3})).get("t", "k")
    assert str(creds3) in str(ei3.value) and "\n" not in str(ei3.value)
    _assert_clean(secrets, _exc_text(ei3.value), debug_logs.text)


def test_authorized_user_json_and_secret_never_leaks(
    tmp_path: Path, sheets_emulator: Emulator, debug_logs: pytest.LogCaptureFixture
) -> None:
    secret, refresh = _canary(), _canary()
    info = {
        "type": "authorized_user",
        "client_id": "client-id.apps.googleusercontent.com",
        "client_secret": secret,
        "refresh_token": refresh,
        "token_uri": f"{sheets_emulator.url}/token",
    }
    creds = tmp_path / "user.json"
    creds.write_text(json.dumps(info))
    settings = _sheets_settings(
        tmp_path, sheets_emulator, sheets_credentials_file=creds, sheets_token_uri=f"{sheets_emulator.url}/token"
    )
    store = open_store("sheets", settings=settings)
    assert store.upsert("t", "k", {"a": 1}).version == 1
    assert "/token" in [r["path"] for r in sheets_emulator.control("GET", "requests")["requests"]]
    settings = settings.model_copy(update={"sheets_token_uri": f"{sheets_emulator.url}/nope"})
    store2 = open_store("sheets", settings=settings)
    with pytest.raises(StateError) as ei:
        store2.upsert("t", "k", {"a": 2})
    _assert_clean([secret, refresh], _exc_text(ei.value), debug_logs.text, repr(store2), repr(settings))
    # missing fields: the message names the file and the fields, not the values
    creds.write_text(json.dumps({"type": "authorized_user", "client_secret": secret}))
    with pytest.raises(StateError) as ei2:
        open_store("sheets", settings=settings)
    assert str(creds) in str(ei2.value)
    _assert_clean([secret], _exc_text(ei2.value))


def test_bad_static_token_is_one_line_and_never_echoed(
    tmp_path: Path, sheets_emulator: Emulator, airtable_emulator: Emulator, debug_logs: pytest.LogCaptureFixture
) -> None:
    canary = _canary()
    sheets = _sheets_settings(tmp_path, sheets_emulator, sheets_token=SecretStr(canary))
    airtable = StateSettings(
        backend="airtable",
        airtable_base_id=new_airtable_base(airtable_emulator),
        airtable_token=canary,
        airtable_api_url=airtable_emulator.url,
        journal_path=tmp_path / "journal.jsonl",
        **FAST_RETRY,
    )
    texts = [repr(sheets), str(sheets), repr(airtable), str(airtable), airtable.model_dump_json()]
    for settings in (sheets, airtable):
        store = open_store(settings.backend, settings=settings)
        texts.append(repr(store))
        for op in (lambda s: s.get("t", "k"), lambda s: s.upsert("t", "k", {"a": 1}), lambda s: s.list("t")):
            with pytest.raises(StateError) as ei:
                op(store)
            assert not isinstance(ei.value, BackendUnavailable)
            assert "access denied" in str(ei.value) or "authentication failed" in str(ei.value)
            assert "\n" not in str(ei.value)
            texts.append(_exc_text(ei.value))
    _assert_clean([canary], debug_logs.text, *texts)


def test_journaled_writes_never_store_credentials(
    tmp_path: Path, airtable_emulator: Emulator, debug_logs: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    canary = _canary()
    monkeypatch.setenv("AIRTABLE_API_KEY", canary)  # the documented env var
    settings = StateSettings(
        backend="airtable",
        airtable_base_id=new_airtable_base(airtable_emulator),
        airtable_api_url=airtable_emulator.url,
        journal_path=tmp_path / "journal.jsonl",
        **FAST_RETRY,
    )
    assert settings.airtable_token is not None and settings.airtable_token.get_secret_value() == canary
    airtable_emulator.fault("down")
    try:
        store = open_store("airtable", settings=settings)
        store.upsert("t", "k", {"a": 1})
        with pytest.raises(BackendUnavailable) as ei:
            store.sync()
    finally:
        airtable_emulator.clear_fault()
    assert len(pending(settings)) == 1
    _assert_clean([canary], settings.journal_file().read_text(), _exc_text(ei.value), debug_logs.text, repr(store))
    assert "journaled" in debug_logs.text  # the outage is logged (without secrets)
