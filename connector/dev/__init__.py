"""Development and test tooling, never deployed (`.funcignore` leaves `connector/dev/` out of the zip).

The local runner (`localhost`, `local_http`: the app's routes, queue workers and timers without the
Functions host), the demo (`python -m connector.dev.demo`, `make demo`), the chaos harness
(`python -m connector.dev.chaos`, `make chaos`) and the stand-ins for the outside world (`sandbox`:
Azurite launcher, Pipedrive and D365 simulators). Nothing the function app imports lives here;
`tests/infra/test_deployed_package.py` imports every module of the built package without it. The
`ml-connector` CLI imports the local runner lazily, in the commands that drain queues without the host.
"""
