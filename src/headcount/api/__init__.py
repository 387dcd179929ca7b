"""The faces of the service: REST, GraphQL, WebSocket and web pages over one service layer."""
