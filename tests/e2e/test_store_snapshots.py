"""The store on disk: start-up reports what it recovered, snapshots are
taken while the server runs (by record count) and at a clean stop, the log
is trimmed behind them, and a restart from snapshot + log has every account."""
import os

import requests

from client import register, wait_until


def snapshots(data_dir):
    d = os.path.join(str(data_dir), "snapshots")
    return sorted(f for f in os.listdir(d) if f.endswith(".snap"))


def test_snapshots_by_count_at_stop_and_recovery(start_server, tmp_path):
    d = tmp_path / "d"
    server = start_server(["--snapshot-every-records", "5", "--snapshot-every-seconds", "0"],
                          data_dir=d)
    assert "recovered in" in server.log() and "0 log records replayed" in server.log()
    for i in range(12):
        register(server, "snap%d" % i, password="password %d" % i)
    wait_until(lambda: snapshots(d), what="a snapshot while running")
    assert "snapshot at lsn" in server.log()
    assert server.stop() == 0
    # The stop wrote a final snapshot covering every record.
    last = int(snapshots(d)[-1][:20])
    again = start_server(data_dir=d)
    log = again.log()
    assert "snapshot at lsn %d" % last in log and "0 log records replayed" in log
    for i in range(12):
        r = requests.post(again.url("/api/v1/auth/login"),
                          json={"username": "snap%d" % i, "password": "password %d" % i})
        assert r.status_code == 200, (i, r.text)
    # At most the newest two snapshots are kept.
    assert len(snapshots(d)) <= 2
