"""Handlers behind function_app.py: plain async functions returning data; function_app adapts them.

Nothing here imports azure.functions, so the same handlers serve the local runner and the tests.
"""
