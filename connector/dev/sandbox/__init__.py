"""Local stand-ins for the outside world: Azurite launcher and the Pipedrive and D365 simulators.

Used by the demo, the local runner and the tests; never deployed (see .funcignore).
"""
