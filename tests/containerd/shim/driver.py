"""A manager process the tests start and SIGKILL: ``python driver.py ROOT RUNTIME ACTION ...``
(RUNTIME ``pyrunc+warm``: pyrunc through the manager's create server).

Actions (each prints "go" before its first manager call and "done" after the last one):
    start-many BUNDLES_DIR    create and start every bundle under BUNDLES_DIR, id = its name
    create ID BUNDLE          create one task
    churn ID BUNDLE ROUNDS    create and force-delete the same id ROUNDS times, tolerating the
                              other churner (AlreadyExists, NotFound, FailedPrecondition)
Then it sleeps until killed.
"""
import os
import sys
import time

from pyrunc import errors
from pyrunc.containerd.tasks import TaskManager


def main():
    root, runtime, action, *args = sys.argv[1:]
    runtime, _, warm = runtime.partition("+")
    manager = TaskManager(root, runtime=runtime, warm_create=warm == "warm")
    print("go", flush=True)
    if action == "start-many":
        for name in sorted(os.listdir(args[0])):
            manager.create(name, os.path.join(args[0], name)).start()
    elif action == "create":
        manager.create(args[0], args[1])
    elif action == "churn":
        cid, bundle, rounds = args[0], args[1], int(args[2])
        outcomes = {"created": 0, "deleted": 0, "conflicts": 0}
        for _ in range(rounds):
            try:
                manager.create(cid, bundle)
                outcomes["created"] += 1
            except errors.AlreadyExists:
                outcomes["conflicts"] += 1
            try:
                manager.get(cid).delete(force=True)
                outcomes["deleted"] += 1
            except (errors.NotFound, errors.FailedPrecondition):
                outcomes["conflicts"] += 1
        print(" ".join("%s=%d" % kv for kv in sorted(outcomes.items())), flush=True)
    print("done", flush=True)
    while True:
        time.sleep(60)


if __name__ == "__main__":
    main()
