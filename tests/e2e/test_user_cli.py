"""`parley user create` and `parley user promote` on a stopped server's data
directory: the accounts they make work once the server starts, and they
refuse while a server holds the directory."""
import subprocess

import requests

from conftest import BIN, assert_error


def user_cmd(args, password=None):
    return subprocess.run([BIN, "user"] + args, input=password, capture_output=True, text=True,
                          timeout=60)


def login(server, name, password):
    return requests.post(server.url("/api/v1/auth/login"),
                         json={"username_or_email": name, "password": password})


def test_created_admin_and_promoted_user_can_log_in(start_server, tmp_path):
    d = str(tmp_path / "d")
    r = user_cmd(["create", "--data-dir", d, "--username", "Root", "--email", "root@example.com",
                  "--admin"], "first password\n")
    assert r.returncode == 0, r.stderr
    assert "created user Root" in r.stdout and "as admin" in r.stdout
    r = user_cmd(["create", "--data-dir", d, "--username", "bob", "--email", "bob@example.com"],
                 "bobs password\n")
    assert r.returncode == 0 and "as admin" not in r.stdout
    r = user_cmd(["promote", "--data-dir", d, "BOB"])
    assert r.returncode == 0 and "bob is now an admin" in r.stdout

    server = start_server(data_dir=d)
    r = login(server, "root", "first password")
    assert r.status_code == 200, r.text
    assert r.json()["user"]["roles"] == ["user", "admin"]
    r = login(server, "bob@example.com", "bobs password")
    assert r.status_code == 200 and "admin" in r.json()["user"]["roles"]
    assert_error(login(server, "root", "wrong password"), 401, "INVALID_CREDENTIALS")


def test_user_commands_refuse_while_the_server_runs(start_server, tmp_path):
    server = start_server(data_dir=tmp_path / "d")
    r = user_cmd(["create", "--data-dir", str(tmp_path / "d"), "--username", "eve", "--email",
                  "eve@example.com"], "some password\n")
    assert r.returncode == 1
    assert "in use by another parley process (pid %d)" % server.pid() in r.stderr
    r = user_cmd(["promote", "--data-dir", str(tmp_path / "d"), "eve"])
    assert r.returncode == 1


def test_user_create_refuses_bad_input_and_changes_nothing(tmp_path):
    d = str(tmp_path / "d")
    cases = [
        (["--username", "x", "--email", "x@example.com"], "long password\n", 2),
        (["--username", "bad name", "--email", "x@example.com"], "long password\n", 2),
        (["--username", "okname", "--email", "not-an-email"], "long password\n", 2),
        (["--username", "okname", "--email", "x@example.com"], "short\n", 2),
        (["--username", "okname", "--email", "x@example.com"], "", 2),
    ]
    for args, password, code in cases:
        r = user_cmd(["create", "--data-dir", d] + args, password)
        assert r.returncode == code, (args, r.stderr)
    r = user_cmd(["create", "--data-dir", d, "--username", "okname", "--email",
                  "x@example.com"], "long password\n")
    assert r.returncode == 0, r.stderr
    r = user_cmd(["create", "--data-dir", d, "--username", "OKNAME", "--email",
                  "y@example.com"], "long password\n")
    assert r.returncode == 1 and "username is taken" in r.stderr
    r = user_cmd(["promote", "--data-dir", d, "nobody"])
    assert r.returncode == 1 and "no user named nobody" in r.stderr
    assert user_cmd(["frobnicate"]).returncode == 2
    assert user_cmd(["create", "--data-dir", d]).returncode == 2
