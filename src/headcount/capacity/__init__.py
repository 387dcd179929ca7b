"""The service layer: one module per resource kind, shared by REST and GraphQL.

Each public coroutine is one use case and owns its transaction.
"""
