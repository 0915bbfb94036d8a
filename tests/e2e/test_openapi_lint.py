"""docs/openapi.json is a valid OpenAPI 3 document, checked by swagger-cli
from the npm registry (installed once into build/tools/). Skipped, and said
so, on a machine without npm."""
import os
import shutil
import subprocess

import pytest

from conftest import ROOT

SWAGGER_CLI = "@apidevtools/swagger-cli@4.0.4"


def test_openapi_document_validates():
    if shutil.which("npm") is None:
        pytest.skip("npm is not installed")
    tools = os.path.join(ROOT, "build", "tools")
    cli = os.path.join(tools, "node_modules", ".bin", "swagger-cli")
    if not os.path.exists(cli):
        os.makedirs(tools, exist_ok=True)
        subprocess.run(["npm", "install", "--prefix", tools, "--no-audit", "--no-fund",
                        "--silent", SWAGGER_CLI], check=True, timeout=600,
                       stdout=subprocess.DEVNULL)
    r = subprocess.run([cli, "validate", os.path.join(ROOT, "docs", "openapi.json")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
