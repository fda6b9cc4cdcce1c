"""Orchestration: our rules over the clients and the state (orders, customers, poll, replay)."""
