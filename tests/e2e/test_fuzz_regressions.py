"""Bad input that scripts/fuzz_api.sh found answered 500: each must be a 4xx envelope."""
from __future__ import annotations

import requests

from tests.fixtures import make_app


def test_bad_requests_found_by_fuzzing_get_4xx_envelopes(cluster, tmp_path):
    cluster.add_node()
    app_id = cluster.upload(make_app(str(tmp_path)))
    task_id = cluster.run_task(app_id)["task_info"]["task_id"]
    base = f"http://{cluster.address}"
    # an action name that cannot go into a Content-Disposition header as it was
    for path in ("/task/workspace", "/workspace/download"):
        for name in ("\U000de637\u00da", 'first"\\'):
            reply = requests.get(base + path, params={"task_id": task_id, "name": name}, timeout=10)
            assert reply.status_code == 404, (path, name, reply.text)
            assert reply.json()["result"] == "ActionNotExists"
    # the workspace of a real action still downloads, named in the header
    reply = requests.get(base + "/task/workspace", params={"task_id": task_id, "name": "first"}, timeout=30)
    assert reply.status_code == 200 and reply.content[:2] == b"\x1f\x8b"
    assert f'filename="{task_id}-first.tar.gz"' in reply.headers["Content-Disposition"]
    # a multipart Content-Type without its boundary
    for method, path in (("PUT", "/app/update"), ("POST", "/app/create"), ("POST", "/venv/create")):
        reply = requests.request(method, base + path, headers={"Content-Type": "multipart/form-data"},
                                 data=b"x", timeout=10)
        assert reply.status_code == 400, (path, reply.text)
        assert reply.json()["result"] == "InvalidParameters" and "multipart" in reply.json()["message"]
    assert "Traceback" not in cluster.manager.output()
