module github.com/tradsys/mesh/services/connectors

go 1.26
