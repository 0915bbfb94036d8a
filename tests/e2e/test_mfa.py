"""Two-factor authentication with TOTP (RFC 6238): setup, enable, a login
that needs the code (MFA_REQUIRED + temp_token, then verify), a login that
gives it at once, no replay of a code, disable, and persistence."""
import base64
import hashlib
import hmac
import struct
import time

import requests

from conftest import assert_error
from client import register, wait_past


def totp(secret_b32, step):
    key = base64.b32decode(secret_b32 + "=" * (-len(secret_b32) % 8))
    mac = hmac.new(key, struct.pack(">Q", step), hashlib.sha1).digest()
    off = mac[-1] & 15
    return "%06d" % ((struct.unpack(">I", mac[off:off + 4])[0] & 0x7FFFFFFF) % 1000000)


def now_step():
    """The current 30-second step, waiting for a new one when fewer than 10 s
    of this one are left, so the codes a test computes stay inside the
    server's window however slowly the requests that use them go."""
    now = time.time()
    if now % 30 > 20:
        wait_past(now - now % 30 + 30, margin=0.05)
    return int(time.time()) // 30


def auth(token):
    return {"Authorization": "Bearer " + token}


def enable_mfa(server, token):
    r = requests.post(server.url("/api/v1/auth/mfa/setup"), headers=auth(token))
    assert r.status_code == 200, r.text
    body = r.json()
    secret = body["secret"]
    assert body["otpauth_url"].startswith("otpauth://totp/Parley:") and secret in body["otpauth_url"]
    assert_error(requests.post(server.url("/api/v1/auth/mfa/enable"), headers=auth(token),
                               json={"code": "000000" if totp(secret, now_step()) != "000000"
                                     else "111111"}), 422, "VALIDATION_ERROR")
    # The previous step's code (one step of drift is allowed) leaves the current
    # and the next step for the rest of the test.
    step = now_step() - 1
    r = requests.post(server.url("/api/v1/auth/mfa/enable"), headers=auth(token),
                      json={"code": totp(secret, step)})
    assert r.status_code == 200 and r.json()["mfa_enabled"] is True, r.text
    return secret, step


def login(server, name, **extra):
    body = {"username": name, "password": "password of " + name}
    body.update(extra)
    return requests.post(server.url("/api/v1/auth/login"), json=body)


def test_login_needs_the_code_then_verify(start_server, tmp_path):
    server = start_server(data_dir=tmp_path / "d")
    token = register(server, "mfauser", password="password of mfauser").token
    secret, used = enable_mfa(server, token)
    assert_error(requests.post(server.url("/api/v1/auth/mfa/setup"), headers=auth(token)), 409,
                 "CONFLICT")

    r = login(server, "mfauser")
    err = assert_error(r, 401, "MFA_REQUIRED")
    temp = err["details"]["temp_token"]
    assert "access_token" not in r.json()
    # The code of the step already used for enabling is refused (no replay).
    assert_error(requests.post(server.url("/api/v1/auth/mfa/verify"),
                               json={"temp_token": temp, "mfa_code": totp(secret, used)}),
                 401, "INVALID_CREDENTIALS")
    assert_error(requests.post(server.url("/api/v1/auth/mfa/verify"),
                               json={"temp_token": temp[:-1] + ("0" if temp[-1] != "0" else "1"),
                                     "mfa_code": totp(secret, used + 1)}), 401, "TOKEN_INVALID")
    r = requests.post(server.url("/api/v1/auth/mfa/verify"),
                      json={"temp_token": temp, "mfa_code": totp(secret, used + 1)})
    assert r.status_code == 200, r.text
    assert requests.get(server.url("/api/v1/users/me"),
                        headers=auth(r.json()["access_token"])).status_code == 200
    # The same code a second time: refused.
    assert_error(requests.post(server.url("/api/v1/auth/mfa/verify"),
                               json={"temp_token": temp, "mfa_code": totp(secret, used + 1)}),
                 401, "INVALID_CREDENTIALS")
    # A wrong password never reaches the second factor.
    assert_error(requests.post(server.url("/api/v1/auth/login"),
                               json={"username": "mfauser", "password": "wrong password"}),
                 401, "INVALID_CREDENTIALS")

    # Two-factor stays on across a restart.
    assert server.stop() == 0
    again = start_server(data_dir=tmp_path / "d")
    assert_error(login(again, "mfauser"), 401, "MFA_REQUIRED")


def test_login_with_the_code_and_disable(server):
    token = register(server, "mfa2", password="password of mfa2").token
    secret, used = enable_mfa(server, token)
    assert_error(login(server, "mfa2", mfa_code="12345x"), 401, "INVALID_CREDENTIALS")
    r = login(server, "mfa2", mfa_code=totp(secret, used + 1))
    assert r.status_code == 200, r.text
    fresh = r.json()["access_token"]
    # Disabling needs a valid, unused code.
    assert_error(requests.post(server.url("/api/v1/auth/mfa/disable"), headers=auth(fresh),
                               json={"code": totp(secret, used + 1)}), 401, "INVALID_CREDENTIALS")
    assert_error(requests.post(server.url("/api/v1/auth/mfa/disable"), headers=auth(fresh),
                               json={}), 422, "VALIDATION_ERROR")
    r = requests.post(server.url("/api/v1/auth/mfa/disable"), headers=auth(fresh),
                      json={"code": totp(secret, used + 2)})
    assert r.status_code == 200 and r.json()["mfa_enabled"] is False, r.text
    assert login(server, "mfa2").status_code == 200
    # Bad input on setup/enable: no credentials, enable without setup.
    assert_error(requests.post(server.url("/api/v1/auth/mfa/setup")), 401,
                 "AUTHENTICATION_REQUIRED")
    other = register(server, "mfa3", password="password of mfa3").token
    assert_error(requests.post(server.url("/api/v1/auth/mfa/enable"), headers=auth(other),
                               json={"code": "123456"}), 409, "CONFLICT")
    assert_error(requests.post(server.url("/api/v1/auth/mfa/disable"), headers=auth(other),
                               json={"code": "123456"}), 409, "CONFLICT")
