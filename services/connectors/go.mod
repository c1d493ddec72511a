module github.com/tradsys/mesh/services/connectors

go 1.26

require (
	github.com/coder/websocket v1.8.14
	github.com/tradsys/mesh/pkg v0.0.0-00010101000000-000000000000
	github.com/tradsys/mesh/proto v0.0.0-00010101000000-000000000000
)

replace github.com/tradsys/mesh/pkg => ../../pkg

replace github.com/tradsys/mesh/proto => ../../proto
