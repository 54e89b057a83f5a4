"""Run scim2-tester against a live SCIM server (argv[1], token in SCIM_TOKEN):
one line per check, then the tally; exit 0 only when every check succeeded."""

import os
import sys
from collections import Counter

from httpx2 import Client
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_tester import Status, check_server

client = SyncSCIMClient(Client(base_url=sys.argv[1], headers={"Authorization": f"Bearer {os.environ['SCIM_TOKEN']}"}))
results = check_server(client)
for result in results:
    reason = f"\n    {result.reason}" if result.reason and result.status != Status.SUCCESS else ""
    print(f"{result.status.name:8} {result.resource_type or '-':6} {result.title}{reason}")
print(dict(Counter(result.status.name for result in results)))
sys.exit(0 if results and all(result.status == Status.SUCCESS for result in results) else 1)
