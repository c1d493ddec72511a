module github.com/tradsys/mesh/services/connectors

go 1.26

require github.com/coder/websocket v1.8.14
