"""The Python `kubernetes` client lists, creates, patches, watches and deletes on a tenant master.

Run by tests/tests/python.rs with KUBECONFIG set to a fresh tenant's kubeconfig.
"""
import os
import threading
import time

from kubernetes import client, config, watch

config.load_kube_config(os.environ["KUBECONFIG"])
v1 = client.CoreV1Api()

names = [n.metadata.name for n in v1.list_namespace().items]
assert "default" in names and "kube-system" in names, names

seen = []
def watcher():
    w = watch.Watch()
    for ev in w.stream(v1.list_namespaced_config_map, namespace="default", timeout_seconds=10):
        seen.append((ev["type"], ev["object"].metadata.name, (ev["object"].data or {}).get("k")))
        if ev["type"] == "DELETED" and ev["object"].metadata.name == "py-cm":
            w.stop()

t = threading.Thread(target=watcher)
t.start()
time.sleep(1)

body = client.V1ConfigMap(metadata=client.V1ObjectMeta(name="py-cm", labels={"from": "python"}), data={"k": "1"})
created = v1.create_namespaced_config_map("default", body)
assert created.metadata.resource_version

patched = v1.patch_namespaced_config_map("py-cm", "default", {"data": {"k": "2"}})
assert patched.data["k"] == "2", patched.data

listed = v1.list_namespaced_config_map("default", label_selector="from=python")
assert [c.metadata.name for c in listed.items] == ["py-cm"], listed.items

v1.delete_namespaced_config_map("py-cm", "default")
t.join(15)
types = [(s[0], s[1]) for s in seen if s[1] == "py-cm"]
assert types[:1] == [("ADDED", "py-cm")] and ("MODIFIED", "py-cm") in types and types[-1] == ("DELETED", "py-cm"), seen
try:
    v1.read_namespaced_config_map("py-cm", "default")
    raise AssertionError("still there")
except client.exceptions.ApiException as e:
    assert e.status == 404, e.status
print("python client: ok")
